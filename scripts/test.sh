#!/usr/bin/env bash
# Runs every test of the project: unit, integration, doc tests, benches in test mode,
# and the examples (which assert what they print). Used as-is by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (lib, integration, examples, benches in test mode)"
cargo test --workspace --all-targets
echo "== cargo test --doc"
cargo test --workspace --doc
echo "== examples"
for example in writer_disabled per_row_errors; do
  echo "-- cargo run --example $example"
  cargo run --quiet --example "$example" -- "$(mktemp -d)"
done
echo "== all tests passed"
