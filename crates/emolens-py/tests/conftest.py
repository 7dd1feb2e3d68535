"""Shared fixtures of the Python package's tests: the CLI binary the results are compared
with, the repository's photos, FER2013 test crops and composite photos built from them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(os.environ.get("EMOLENS_BIN", ROOT / "target/release/emolens"))
PHOTOS = ROOT / "assets/photos"
SHARED = Path(os.environ.get("EMOLENS_SHARED", ROOT.parent / "shared"))
FER_TEST = SHARED / "data/fer2013/test"
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs the emolens binary this checkout built (`cargo build --release --workspace`)."""
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build it first (cargo build --release --workspace)")
    p = subprocess.run([str(CLI), *args], capture_output=True, text=True)
    if check and p.returncode not in (0, 2):
        raise AssertionError(f"emolens {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def cli_analyze(*args: str) -> list[dict]:
    """`emolens analyze --json ARGS`: one dict per photo."""
    out = run_cli("analyze", "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def fer_crops(per_class: int) -> list[Path]:
    """The first `per_class` FER2013 test crops of every class (sorted: the same every run)."""
    if not FER_TEST.is_dir():
        pytest.fail(f"FER2013 is missing at {FER_TEST} (set EMOLENS_SHARED; see README.md)")
    return [p for c in CLASSES for p in sorted((FER_TEST / c).glob("*.jpg"))[:per_class]]


@pytest.fixture(scope="session")
def composites(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Multi-face photos: FER2013 test faces upscaled to 144 px and pasted on a grey
    background (PNG, grayscale and RGB, and a JPEG), written under the test's temp folder."""
    from PIL import Image

    out = tmp_path_factory.mktemp("composites")
    faces = fer_crops(2)
    paths = []
    for k, (mode, ext) in enumerate([("L", "png"), ("RGB", "png"), ("RGB", "jpg")]):
        canvas = Image.new(mode, (720, 480), 110 if mode == "L" else (120, 110, 100))
        for j in range(4):
            face = Image.open(faces[(4 * k + j) % len(faces)]).convert(mode).resize((144, 144))
            canvas.paste(face, (40 + 170 * j, 60 + 150 * (j % 2)))
        p = out / f"composite-{k}.{ext}"
        canvas.save(p, quality=92) if ext == "jpg" else canvas.save(p)
        paths.append(p)
    return paths
