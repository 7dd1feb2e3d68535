#!/usr/bin/env bash
# The Python package's tests: maturin builds the wheel of crates/emolens-py, a fresh venv
# installs it with pytest, and pytest checks `import emolens` against the CLI
# (target/release/emolens, from `cargo build --release --workspace`) on real photos and
# FER2013 crops; pytest collecting no test fails too.
#
# Not a phase of scripts/test.sh yet: maturin runs its own `cargo rustc -p emolens-py`, and
# cargo unifies features over the selected package only, so serde (`rc`), serde_json, syn
# (`fold`), tracing (`log`), bytes, indexmap and 17 more crates resolve with other features than
# in the workspace build, and most of the dependency tree, burn included, compiles a second
# time (docs/python.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tools="$root/.venv-test"          # maturin (installed by scripts/install-test-deps.sh)
"$tools/bin/maturin" build --release --locked -m crates/emolens-py/Cargo.toml \
  --out target/wheels --interpreter "$tools/bin/python" --compatibility linux --auditwheel skip
wheel=$(ls -t target/wheels/emolens-*.whl | head -1)
venv="$root/target/py-test-venv" # fresh every run: the wheel and its declared dependencies only
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel" \
  -r crates/emolens-py/requirements-test.txt
# Run from the tests folder, so `import emolens` is the installed wheel, not a source folder.
cd crates/emolens-py/tests
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider .
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of this phase too.
[ "$rc" -eq 5 ] && echo "pytest collected no tests: the Python package went untested" >&2
exit "$rc"
