#!/usr/bin/env bash
# Checks that the committed generated code (proto/gen) is what the protos
# give now: regenerates in a temporary copy of proto/ and fails, printing the
# diff, when anything differs (forgot to run scripts/generate.sh, edited a
# generated file, or a stale file left behind). Leaves the work tree alone.
set -euo pipefail

proto_dir="$(cd "$(dirname "$0")/.." && pwd)"
tools_dir="$(cd "$proto_dir/../tools" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "generate-check: copying proto/ to $tmp"
# The copy keeps the layout proto/ + tools/ that buf.gen.yaml's
# -modfile=../tools/go.mod expects.
cp -R "$proto_dir" "$tmp/proto"
ln -s "$tools_dir" "$tmp/tools"

echo "generate-check: regenerating in the copy"
bash "$tmp/proto/scripts/generate.sh"

echo "generate-check: comparing proto/gen with the regenerated copy"
if ! diff -ru "$proto_dir/gen" "$tmp/proto/gen"; then
	echo "generate-check: FAILED: proto/gen is out of date; run proto/scripts/generate.sh and commit the result" >&2
	exit 1
fi
echo "generate-check: ok, proto/gen is up to date"
