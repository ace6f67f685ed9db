#!/usr/bin/env bash
# Lints the protos and regenerates everything under proto/gen from them:
# Go messages, gRPC and grpc-gateway code in gen/go, the merged OpenAPI
# document in gen/openapi. Idempotent: the same protos give the same files.
# Needs only the Go toolchain: buf and the protoc plugins are the versions
# pinned in tools/go.mod, built (and cached) by `go tool`.
set -euo pipefail

cd "$(dirname "$0")/.."
# `go tool -modfile=../tools/go.mod` refuses workspace mode, and the tools
# module is not (and must not be) part of go.work.
export GOWORK=off
buf=(go tool -modfile=../tools/go.mod buf)

echo "generate: buf lint (proto/)"
"${buf[@]}" lint

echo "generate: removing old generated code (gen/go, gen/openapi/*.swagger.json)"
rm -rf gen/go
rm -f gen/openapi/*.swagger.json

echo "generate: buf generate -> gen/go, gen/openapi"
"${buf[@]}" generate

echo "generate: gofmt gen/"
gofmt -l -w gen >/dev/null

echo "generate: done"
