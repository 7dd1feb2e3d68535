#!/usr/bin/env bash
# The Python package's tests: the wheel of crates/emolens-py is packed from the workspace build's
# extension (scripts/pack-wheel.py: target/release/libemolens_native.so, built by
# `cargo build --release --workspace` or scripts/test.sh's build), a fresh venv installs it with
# pytest, and pytest checks `import emolens` against the CLI (target/release/emolens) on real
# photos and FER2013 crops; pytest collecting no test fails too. A phase of scripts/test.sh.
#
# EMOLENS_WHEEL=maturin builds the wheel with maturin instead, as a user does (docs/python.md):
# maturin runs its own `cargo rustc -p emolens-py`, and cargo unifies features over that one
# package, so most of the dependency tree, burn included, compiles a second time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ "${EMOLENS_WHEEL:-pack}" = maturin ]; then
  tools="$root/.venv-test"
  "$tools/bin/python" -c 'import maturin' 2>/dev/null ||
    "$tools/bin/python" -m pip install -q --disable-pip-version-check \
      maturin==1.16.0
  rm -f target/wheels/emolens-*.whl
  "$tools/bin/maturin" build --release --locked -m crates/emolens-py/Cargo.toml \
    --out target/wheels --interpreter "$tools/bin/python" --compatibility linux --auditwheel skip
  wheel=$(ls -t target/wheels/emolens-*.whl | head -1)
else
  wheel=$(python3 scripts/pack-wheel.py)
fi
echo "wheel: $wheel"
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
