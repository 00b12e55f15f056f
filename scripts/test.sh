#!/usr/bin/env bash
# Runs every test of the project: unit, integration, doc tests, sqllogictest, benches in
# test mode, the examples (which assert what they print), and the Python package's tests
# (in a virtualenv under target/, with python/tests/requirements.txt).
#
# One feature set everywhere (`--features datafusion`, the README's first command's), so
# every step reuses the build of the one before; the Python extension module is built in
# the same cargo run and installed from it. Used as-is by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
features=(--features datafusion)
# The extension module (python/, a cdylib) takes its Python symbols from the interpreter
# that loads it: PyO3 must not link libpython into it.
export PYO3_BUILD_EXTENSION_MODULE=1

# The Ballista codecs (crates/zerobus-ballista) are built on their own, last: ballista-core
# turns on features of the Arrow/DataFusion/object_store crates (serde, cloud stores) that
# the rest does not use, so building them with the rest would make this build differ from
# the README's first command's and rebuild DataFusion after it.
workspace=(--workspace --exclude zerobus-ballista)
echo "== cargo build (every crate and target, the Python extension module included)"
cargo build "${workspace[@]}" --all-targets "${features[@]}"
echo "== cargo test (lib, integration, sqllogictest, examples, benches in test mode)"
cargo test "${workspace[@]}" --all-targets "${features[@]}"
echo "== cargo test --doc"
cargo test "${workspace[@]}" --doc --exclude arrow-zerobus-sdk-wrapper-python "${features[@]}"
echo "== the README's first command on this build: nothing left to compile"
# A dependency whose features differ between this crate alone and the workspace would
# rebuild it and everything above it (minutes) for the first command after this script,
# or for this script after the first command.
rebuilt=$(cargo build "${features[@]}" --example local_end_to_end 2>&1 | grep 'Compiling' || true)
if [ -n "$rebuilt" ]; then
  echo "$rebuilt"
  echo "error: 'cargo run ${features[*]} --example local_end_to_end' rebuilt the crates above:" \
    "the README's two commands no longer share one build (compare 'cargo tree -e features'" \
    "of the root crate with the workspace's, and unify in Cargo.toml's dev-dependencies)" >&2
  exit 1
fi
echo "== examples"
for example in local_end_to_end writer_disabled per_row_errors; do
  echo "-- cargo run ${features[*]} --example $example"
  cargo run --quiet "${features[@]}" --example "$example" -- "$(mktemp -d)"
done
echo "== the Ballista codecs (their own DataFusion features: a second build of it)"
cargo test -p zerobus-ballista
echo "== python: the package's tests (pytest), its types (mypy --strict, stubtest)"
venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r python/tests/requirements.txt
"$venv/bin/python" scripts/python-dev-install.py debug
(cd python && "../$venv/bin/python" -m pytest -q tests)
(cd python && "../$venv/bin/python" -m mypy --strict examples arrow_zerobus_sdk_wrapper)
(cd python && "../$venv/bin/python" -m mypy.stubtest arrow_zerobus_sdk_wrapper \
  --mypy-config-file pyproject.toml --allowlist stubtest-allowlist.txt)
echo "== all tests passed"
