#!/usr/bin/env python3
"""`emolens.analyze` from Python against `emolens analyze` (the CLI) on the same photos.

    python bench/python/overhead.py [--photos N] [--rounds R]     (the venv with the wheel)

Builds N composite photos (1280x960, six FER2013 test faces each, upscaled to 96-192 px, on a
textured background; written under target/bench-python/, never committed), then per round, in
alternating order:
- CLI: `emolens analyze --json DIR` as a process: wall time (start-up and model load included)
  and its own processing clock (the logged `analysis done seconds=`, after the warm-up);
- Python: `emolens.analyze(DIR)` with the model already loaded (the processing the CLI clock
  covers), the same from numpy arrays (pixels already decoded in Python), and a fresh
  `python -c "import emolens; emolens.analyze(DIR)"` process (wall, like the CLI's).
Prints medians over the rounds and checks that both give the same results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import emolens

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("EMOLENS_BIN", ROOT / "target/release/emolens"))
FER = Path(os.environ.get("EMOLENS_SHARED", ROOT.parent / "shared")) / "data/fer2013/test"


def make_photos(n: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    faces = sorted(FER.glob("*/*.jpg"))[:: 97][: 6 * n]
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        noise = rng.integers(60, 200, (960 // 8, 1280 // 8, 3), dtype=np.uint8)
        canvas = Image.fromarray(noise).resize((1280, 960), Image.BILINEAR)
        for j in range(6):
            side = int(rng.integers(96, 193))
            face = Image.open(faces[(6 * i + j) % len(faces)]).convert("RGB").resize((side, side))
            canvas.paste(face, (40 + 205 * j, 120 + 330 * (j % 2)))
        p = out / f"photo-{i:03}.jpg"
        canvas.save(p, quality=90)
        paths.append(p)
    return paths


def cli_run(folder: Path) -> tuple[float, float, list[dict]]:
    t0 = time.perf_counter()
    p = subprocess.run([str(CLI), "analyze", "--json", str(folder)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    m = re.search(r'seconds="?([0-9.]+)', p.stderr)
    if not m:
        sys.exit(f"no 'analysis done seconds=' in the CLI's log: {p.stderr[-500:]}")
    return wall, float(m.group(1)), [json.loads(line) for line in p.stdout.splitlines()]


def python_process(folder: Path) -> float:
    code = f"import emolens; emolens.analyze({str(folder)!r})"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    folder = ROOT / "target/bench-python/photos"
    photos = make_photos(a.photos, folder)
    arrays = [np.asarray(Image.open(p)) for p in photos]
    analyzer = emolens.Analyzer()
    analyzer.analyze(str(photos[0]))  # warm
    rows: dict[str, list[float]] = {k: [] for k in ["cli_wall", "cli_proc", "py_paths", "py_arrays", "py_wall"]}
    for r in range(a.rounds):
        order = ["cli", "py"] if r % 2 == 0 else ["py", "cli"]
        for side in order:
            if side == "cli":
                wall, proc, cli_json = cli_run(folder)
                rows["cli_wall"].append(wall)
                rows["cli_proc"].append(proc)
            else:
                t0 = time.perf_counter()
                result = analyzer.analyze(str(folder))
                rows["py_paths"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                analyzer.analyze(arrays)
                rows["py_arrays"].append(time.perf_counter() - t0)
                rows["py_wall"].append(python_process(folder))
    same = [p.to_dict() for p in result] == cli_json
    faces = sum(len(p.faces) for p in result)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(subprocess.run([str(ROOT / "scripts/cpu-info.sh")], capture_output=True, text=True).stdout.strip())
    print(f"{len(photos)} photos 1280x960, {faces} faces, {a.rounds} rounds (medians); same results as the CLI: {same}")
    print(f"CLI process (wall, start-up and model load included): {med['cli_wall']:.3f} s")
    print(f"CLI processing clock (after warm-up):                  {med['cli_proc']:.3f} s")
    print(f"emolens.analyze(folder), model loaded:                  {med['py_paths']:.3f} s "
          f"({(med['py_paths'] / med['cli_proc'] - 1) * 100:+.1f} % against the CLI's clock)")
    print(f"emolens.analyze(numpy arrays), model loaded:            {med['py_arrays']:.3f} s")
    print(f"python -c 'import emolens; analyze(folder)' (wall):     {med['py_wall']:.3f} s "
          f"({(med['py_wall'] / med['cli_wall'] - 1) * 100:+.1f} % against the CLI process)")
    if not same:
        sys.exit("the Python results differ from the CLI's")


if __name__ == "__main__":
    main()
