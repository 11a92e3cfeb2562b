#!/usr/bin/env bash
# RabbitMQ PerfTest (com.rabbitmq:perf-test from Maven Central, pinned in
# pom.xml) against a broker: publishes N persistent messages with publisher
# confirms over CHANNELS channels of one connection (one producer per
# channel, N / CHANNELS messages each, at most CONFIRM / CHANNELS
# unconfirmed per channel: CONFIRM in total), then consumes them with one
# consumer at prefetch QOS, and prints `RESULT perftest/publish <msg/s> /s`
# and `RESULT perftest/consume <msg/s> /s`.
#
# usage: run.sh AMQP_URL [MESSAGES] [SIZE] [CONFIRM] [QOS] [QUEUE] [CHANNELS]
# (the durable queue QUEUE is left behind, empty; delete it afterwards)
set -euo pipefail
URL="$1"; N="${2:-100000}"; SIZE="${3:-1024}"; CONFIRM="${4:-128}"; QOS="${5:-128}"
CH="${7:-1}"
HERE="$(cd "$(dirname "$0")" && pwd)"
LIB="${KUBEPKG_CACHE:-$HOME/.cache/kubepkg}/perftest/lib"
if ! ls "$LIB"/perf-test-*.jar >/dev/null 2>&1; then
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" >&2
fi
Q="${6:-perftest-$$}"
PER_CH=$(( N / CH )); WIN_CH=$(( CONFIRM / CH )); [ "$WIN_CH" -ge 1 ] || WIN_CH=1
LOG="$(mktemp -d)"; trap 'rm -rf "$LOG"' EXIT
run() { java -cp "$LIB/*" com.rabbitmq.perf.PerfTest --uri "$URL" "$@"; }
# Publish only, into a durable queue that stays.
run -x 1 -X "$CH" -y 0 -C "$PER_CH" -s "$SIZE" -c "$WIN_CH" -f persistent -u "$Q" -ad false > "$LOG/pub.log" 2>&1
PUB=$(grep -Eo 'sending rate avg: [0-9.]+' "$LOG/pub.log" | grep -Eo '[0-9.]+$' | tail -1)
# Consume only, what was published.
run -x 0 -y 1 -D "$(( PER_CH * CH ))" -q "$QOS" -f persistent -u "$Q" -ad false > "$LOG/con.log" 2>&1
CON=$(grep -Eo 'receiving rate avg: [0-9.]+' "$LOG/con.log" | grep -Eo '[0-9.]+$' | tail -1)
echo "RESULT perftest/publish ${PUB:-nan} /s"
echo "RESULT perftest/consume ${CON:-nan} /s"
