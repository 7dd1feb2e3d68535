#!/usr/bin/env python3
"""Packs the Python wheel of emolens from the workspace build, without maturin.

`cargo build --release --workspace` (and scripts/test.sh's build) already compiles the
extension, target/release/libemolens_native.so, with the workspace's feature set; maturin would
compile it again through `cargo rustc -p emolens-py`, whose feature unification over one package
rebuilds most of the tree (docs/python.md). This script writes the same wheel maturin writes:
the Python half from crates/emolens-py/python, the extension as `emolens/_native.abi3.so`, and
the metadata from crates/emolens-py/pyproject.toml and the workspace version.

    scripts/pack-wheel.py [--lib target/release/libemolens_native.so] [--out target/wheels]

Prints the wheel's path. Standard library only (Python 3.11+: tomllib).
"""

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "crates" / "emolens-py"
TAG = "cp311-abi3-linux_x86_64"  # abi3-py311 (crates/emolens-py/Cargo.toml), this machine's arch


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def stripped(lib: Path) -> bytes:
    """The extension without its debug sections (line tables: most of its size), as maturin's
    `--strip` does; unchanged where binutils' strip is missing."""
    if shutil.which("strip") is None:
        return lib.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / lib.name
        subprocess.run(["strip", "--strip-debug", "-o", str(out), str(lib)], check=True)
        return out.read_bytes()


def metadata(project: dict, version: str) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"License: {project['license']}",
        f"Requires-Python: {project['requires-python']}",
    ]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {dep} ; extra == '{extra}'" for dep in deps]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", type=Path, default=ROOT / "target/release/libemolens_native.so")
    parser.add_argument("--out", type=Path, default=ROOT / "target/wheels")
    args = parser.parse_args()
    if not args.lib.is_file():
        sys.exit(
            f"{args.lib}: no extension library; build it first with "
            "`cargo build --release --workspace` (or scripts/test.sh's build)"
        )
    pyproject = tomllib.loads((CRATE / "pyproject.toml").read_text())
    project = pyproject["project"]
    module = pyproject["tool"]["maturin"]["module-name"]  # "emolens._native"
    package, native = module.split(".")
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    name = project["name"]
    dist_info = f"{name}-{version}.dist-info"

    files: list[tuple[str, bytes]] = []
    source = CRATE / pyproject["tool"]["maturin"]["python-source"] / package
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in {".py", ".pyi", ".typed"}:
            files.append((f"{package}/{path.name}", path.read_bytes()))
    files.append((f"{package}/{native}.abi3.so", stripped(args.lib)))
    files.append((f"{dist_info}/METADATA", metadata(project, version).encode()))
    wheel_file = f"Wheel-Version: 1.0\nGenerator: emolens scripts/pack-wheel.py\nRoot-Is-Purelib: false\nTag: {TAG}\n"
    files.append((f"{dist_info}/WHEEL", wheel_file.encode()))
    record = "".join(f"{n},{record_hash(d)},{len(d)}\n" for n, d in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))

    args.out.mkdir(parents=True, exist_ok=True)
    wheel = args.out / f"{name}-{version}-{TAG}.whl"
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, d in files:
            info = zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if n.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, d)
    os.replace(tmp, wheel)
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
