#!/usr/bin/env bash
# Runs every test of the project: unit, integration, doc tests, sqllogictest, benches in
# test mode, the examples (which assert what they print), and the Python interop tests (in
# a virtualenv under target/, installed from tests/python/requirements.txt).
#
# One feature set everywhere (`--features datafusion`, the README's first command's), so
# every step reuses the build of the one before. Used as-is by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
features=(--features datafusion)

echo "== cargo test (lib, integration, sqllogictest, examples, benches in test mode)"
cargo test --workspace --all-targets "${features[@]}"
echo "== cargo test --doc"
cargo test --workspace --doc "${features[@]}"
echo "== examples"
for example in local_end_to_end writer_disabled per_row_errors; do
  echo "-- cargo run ${features[*]} --example $example"
  cargo run --quiet "${features[@]}" --example "$example" -- "$(mktemp -d)"
done
echo "== python: debug files (pyarrow, google.protobuf) and Delta tables (polars, deltalake)"
venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
"$venv/bin/python" -m pytest -q tests/python
echo "== all tests passed"
