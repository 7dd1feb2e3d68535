#!/usr/bin/env python3
"""Benchmark: `emolens analyze` against the PyPI `fer` package (Haar + mini-Xception) on the
same photos, in one run. Prints photos/s, faces/s and detection recall/precision per photo
size, then emolens' peak memory over a small and a large folder (flat = streamed).

usage: bench/analyze/run.py [--per-size N] [--many N] [--skip-fer]
needs: scripts/setup-peers.sh (for .venv-peers), a built target/release/emolens, and a model:
the bundled one, or EMOLENS_MODEL=FILE.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER_PY = ROOT / ".venv-peers/bin/python"
EMOLENS = ROOT / "target/release/emolens"


def shared_dir():
    return Path(os.environ.get("EMOLENS_SHARED", ROOT.parent / "shared"))


def match(boxes, truth):
    """A detection counts when its centre lies in a true face box and its size is within a
    factor 2 of it (the detectors box faces differently, so IoU would favour one)."""
    used = [False] * len(truth)
    tp = 0
    for (x, y, w, h) in boxes:
        cx, cy = x + w / 2, y + h / 2
        for i, (tx, ty, tw, th) in enumerate(truth):
            if not used[i] and tx <= cx <= tx + tw and ty <= cy <= ty + th and 0.5 <= w / tw <= 2:
                used[i] = True
                tp += 1
                break
    return tp, len(boxes) - tp


def run_emolens(photos, extra_env=None):
    env = dict(os.environ, EMOLENS_LOG="warn", **(extra_env or {}))
    t = time.perf_counter()
    p = subprocess.run([str(EMOLENS), "analyze", "--json", *map(str, photos)], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if p.returncode not in (0, 2):
        sys.exit(f"emolens analyze failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        out[r["source"]] = [[f["bbox"]["x"], f["bbox"]["y"], f["bbox"]["width"], f["bbox"]["height"]] for f in r.get("faces", [])]
    return dt, out


def run_fer(photos):
    p = subprocess.run([str(PEER_PY), str(ROOT / "bench/analyze/fer_peer.py"), *map(str, photos)], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"fer failed:\n{p.stderr[-3000:]}")
    out, secs = {}, 0.0
    for line in p.stdout.splitlines():
        r = json.loads(line)
        out[r["source"]] = r["boxes"]
        secs += r["seconds"]
    return secs, out


def peak_rss_mib(photos_dir):
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", str(EMOLENS), "analyze", "--json", "-o", "/dev/null", str(photos_dir)],
                       capture_output=True, text=True, env=dict(os.environ, EMOLENS_LOG="warn"))
    dt = time.perf_counter() - t
    return int(p.stderr.strip().splitlines()[-1]) / 1024, dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-size", type=int, default=10)
    ap.add_argument("--many", type=int, default=2000, help="photos in the memory-flatness folder")
    ap.add_argument("--skip-fer", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "target/bench-analyze"))
    a = ap.parse_args()
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([str(PEER_PY), str(ROOT / "bench/analyze/make_photos.py"), str(shared_dir() / "data/fer2013/test"), str(out), str(a.per_size)], check=True)
    truth = json.loads((out / "truth.json").read_text())
    groups = defaultdict(list)
    for path in truth:
        groups[Path(path).parent.name].append(path)

    print(f"\ncpu cores: {os.cpu_count()}; emolens: {EMOLENS}; model: {os.environ.get('EMOLENS_MODEL', 'bundled')}")
    print(f"{'size':>10} {'tool':>8} {'photos':>6} {'faces':>5} {'photos/s':>9} {'faces/s':>8} {'recall':>7} {'precision':>9}")
    for size in sorted(groups, key=lambda s: int(s.split('x')[0])):
        photos = sorted(groups[size])
        n_true = sum(len(truth[p]) for p in photos)
        sides = [("emolens", run_emolens)] + ([] if a.skip_fer else [("fer", run_fer)])
        for name, fn in sides:
            secs, found = fn(photos)
            tp = fp = 0
            for p in photos:
                t, f = match(found.get(p, []), truth[p])
                tp += t
                fp += f
            n_found = tp + fp
            print(f"{size:>10} {name:>8} {len(photos):>6} {n_true:>5} {len(photos) / secs:>9.2f} {n_found / secs:>8.2f}"
                  f" {tp / n_true:>7.3f} {tp / max(1, n_found):>9.3f}")

    # Memory over a small and a large folder of the same photos (hard links, no extra disk).
    src = sorted(groups["1280x960"])
    for n in (100, a.many):
        d = out / f"many{n}"
        d.mkdir()
        for i in range(n):
            os.link(src[i % len(src)], d / f"p{i:05d}.jpg")
        rss, dt = peak_rss_mib(d)
        print(f"memory: {n:>5} photos of 1280x960 -> peak RSS {rss:.0f} MiB ({n / dt:.1f} photos/s)")


if __name__ == "__main__":
    main()
