#!/usr/bin/env bash
# RabbitMQ PerfTest (com.rabbitmq:perf-test from Maven Central, pinned in
# pom.xml) against a broker: publishes N persistent messages with publisher
# confirms (at most CONFIRM unconfirmed), then consumes them with prefetch
# QOS, and prints `RESULT perftest/publish <msg/s> /s` and
# `RESULT perftest/consume <msg/s> /s`.
#
# usage: run.sh AMQP_URL [MESSAGES] [SIZE] [CONFIRM] [QOS] [QUEUE]
# (the durable queue QUEUE is left empty behind; delete it afterwards)
set -euo pipefail
URL="$1"; N="${2:-100000}"; SIZE="${3:-1024}"; CONFIRM="${4:-128}"; QOS="${5:-128}"
HERE="$(cd "$(dirname "$0")" && pwd)"
LIB="${KUBEPKG_CACHE:-$HOME/.cache/kubepkg}/perftest/lib"
if ! ls "$LIB"/perf-test-*.jar >/dev/null 2>&1; then
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" >&2
fi
Q="${6:-perftest-$$}"
run() { java -cp "$LIB/*" com.rabbitmq.perf.PerfTest --uri "$URL" "$@"; }
# Publish only, into a durable queue that stays.
run -x 1 -y 0 -C "$N" -s "$SIZE" -c "$CONFIRM" -f persistent -u "$Q" -ad false > /tmp/perftest-pub-$$.log 2>&1
PUB=$(grep -Eo 'sending rate avg: [0-9.]+' /tmp/perftest-pub-$$.log | grep -Eo '[0-9.]+$' | tail -1)
# Consume only, what was published.
run -x 0 -y 1 -D "$N" -q "$QOS" -f persistent -u "$Q" -ad false > /tmp/perftest-con-$$.log 2>&1
CON=$(grep -Eo 'receiving rate avg: [0-9.]+' /tmp/perftest-con-$$.log | grep -Eo '[0-9.]+$' | tail -1)
echo "RESULT perftest/publish ${PUB:-0} /s"
echo "RESULT perftest/consume ${CON:-0} /s"
