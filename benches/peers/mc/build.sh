#!/usr/bin/env bash
# Builds MinIO's `mc` client from its Go module, pinned, into the kubepkg cache
# (the same pin `cargo xtask` uses). Prints the binary's path. Idempotent.
set -euo pipefail
MC_VERSION="${MC_VERSION:-v0.0.0-20250313080218-cf909e1063a9}"
CACHE="${KUBEPKG_CACHE:-$HOME/.cache/kubepkg}"
STAMP="${MC_VERSION#v0.0.0-}"; STAMP="${STAMP%%-*}"
BIN_DIR="$CACHE/bin/mc-$STAMP"
if [ ! -x "$BIN_DIR/mc" ]; then
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "github.com/minio/mc@$MC_VERSION" >&2
fi
echo "$BIN_DIR/mc"
