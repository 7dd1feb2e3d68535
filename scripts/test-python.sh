#!/usr/bin/env bash
# The Python package's phase of scripts/test.sh: maturin builds the wheel of crates/emolens-py
# from the workspace's release build (same target folder, so only the extension itself is
# linked again), a fresh venv installs it with pytest, and pytest checks `import emolens`
# against the CLI (target/release/emolens) on real photos and FER2013 crops.
# Needs the release build (`cargo test --release --workspace --no-run` or `cargo build`).
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
