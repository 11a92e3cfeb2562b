#!/usr/bin/env bash
# Builds go-containerregistry's `crane` (the peer of the image-api registry
# benchmark) from the Go module proxy, pinned to a release, into
# ~/.cache/kubepkg/bin/crane-<version>/crane (the same place `cargo xtask
# peers` puts it). Prints the binary's path. Idempotent: an existing binary of
# the right version is reused. Nothing is written into the repository.
set -euo pipefail

VERSION="${CRANE_VERSION:-v0.22.1}"
DEST="${KUBEPKG_CACHE:-$HOME/.cache/kubepkg}/bin/crane-${VERSION}"
BIN="$DEST/crane"

if [[ -x "$BIN" ]] && [[ "$("$BIN" version 2>/dev/null)" == "$VERSION" ]]; then
    echo "$BIN"
    exit 0
fi

command -v go >/dev/null || { echo "build.sh: needs the go toolchain on PATH" >&2; exit 1; }
mkdir -p "$DEST"
# A throwaway GOPATH-less install: `go install pkg@version` resolves the
# module through GOPROXY and checks it against the checksum database.
GOBIN="$DEST" CGO_ENABLED=0 GOFLAGS="-trimpath" \
    go install "github.com/google/go-containerregistry/cmd/crane@${VERSION}" >&2
got="$("$BIN" version)"
if [[ "$got" != "$VERSION" ]]; then
    echo "build.sh: built crane reports version $got, expected $VERSION" >&2
    exit 1
fi
echo "$BIN"
