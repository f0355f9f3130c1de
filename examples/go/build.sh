#!/usr/bin/env bash
# Build the Go example client with Debian's Go toolchain and the Go gRPC and
# protobuf libraries Debian packages under /usr/share/gocode (make go-deps).
# No Go module proxy is reachable here, so it builds in GOPATH mode: a
# throwaway GOPATH whose src/cronfleet is this repository (the stubs' import
# path is cronfleet/gen/go/cronfleet/v1), then Debian's tree.
#
#   examples/go/build.sh [OUTPUT]     (default: .cronfleet/bin/quickstart)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/.cronfleet/bin/quickstart}
mkdir -p "$(dirname "$out")"
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src"
ln -s "$root" "$gopath/src/cronfleet"
cd "$gopath/src/cronfleet"
# Go's own per-user build cache where it can be written (shared by every
# clone: a cold build of the gRPC libraries takes 12 s here, a warm one 2 s);
# else one in this clone (a home of /nonexistent, as build chroots have).
cache=${GOCACHE:-$(go env GOCACHE 2>/dev/null || true)}
case $cache in
  /*) { mkdir -p "$cache" && [ -w "$cache" ]; } 2>/dev/null || cache=$root/.cronfleet/go-build ;;
  *) cache=$root/.cronfleet/go-build ;;
esac
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= GOPROXY=off \
  GOCACHE="$cache" \
  go build -o "$out" cronfleet/examples/go/quickstart
echo "$out"
