#!/usr/bin/env python3
"""Benchmark: `emolens analyze` against the PyPI `fer` package (Haar + mini-Xception) on the
same photos, under the same conditions, in one run.

Both tools are timed the same two ways, and both are printed:
  * processing: each tool's own clock around its photo loop, after its model is loaded
    (emolens: the `analysis done seconds=` it logs, which starts after the model load and
    includes its first, cold inference; fer: the sum of its per-photo times after one
    warm-up photo, as fer_peer.py measures them);
  * wall: the whole process, start-up, imports and model load included.
Runs alternate between the tools (emolens first in even rounds, fer first in odd rounds) and
the figures are medians over the rounds, so background load on a shared machine hits both.
Detection recall and precision come from the boxes each tool reports against the known boxes
of the composite photos (make_photos.py), plus the public-domain photos in assets/photos.
Last: emolens' peak memory over a folder of 100 and of --many photos (flat = streamed).

emolens runs once per detector of --detectors (default both: seetaface, printed as "emolens",
and blazeface, "emolens-blazeface"; `--detector` of `emolens analyze`).

usage: bench/analyze/run.py [--per-size N] [--rounds N] [--many N] [--skip-fer] [--skip-memory] [--detectors LIST]
needs: scripts/setup-peers.sh (for .venv-peers), a built target/release/emolens (or EMOLENS_BIN=FILE), and a model:
the bundled one, or EMOLENS_MODEL=FILE.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER_PY = ROOT / ".venv-peers/bin/python"
EMOLENS = Path(os.environ.get("EMOLENS_BIN", ROOT / "target/release/emolens"))

# Public-domain photos with known face counts (assets/photos/README.md). The astronaut's box is
# the one the analysis tests assert (Eileen Collins' face, about 170,65 105x105).
ASSET_TRUTH = {
    "astronaut.png": [[170, 65, 105, 105]],
    "chelsea.png": [],
    "rocket.jpg": [],
}


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


def run_emolens(photos, detector="seetaface"):
    env = dict(os.environ, EMOLENS_LOG="info", NO_COLOR="1", EMOLENS_ANALYZE_DETECTOR=detector)
    t = time.perf_counter()
    p = subprocess.run([str(EMOLENS), "analyze", "--json", *map(str, photos)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode not in (0, 2):
        sys.exit(f"emolens analyze failed ({p.returncode}):\n{p.stderr[-3000:]}")
    m = re.search(r'analysis done.*?seconds="?([0-9.]+)', re.sub(r"\x1b\[[0-9;]*m", "", p.stderr))
    if not m:
        sys.exit(f"emolens did not log its processing time ('analysis done ... seconds='):\n{p.stderr[-3000:]}")
    out = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        out[r["source"]] = [[f["bbox"]["x"], f["bbox"]["y"], f["bbox"]["width"], f["bbox"]["height"]] for f in r.get("faces", [])]
    return float(m.group(1)), wall, out


def run_fer(photos):
    t = time.perf_counter()
    p = subprocess.run([str(PEER_PY), str(ROOT / "bench/analyze/fer_peer.py"), *map(str, photos)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"fer failed:\n{p.stderr[-3000:]}")
    out, secs = {}, 0.0
    for line in p.stdout.splitlines():
        r = json.loads(line)
        out[r["source"]] = r["boxes"]
        secs += r["seconds"]
    return secs, wall, out


TOOLS = {
    "emolens": run_emolens,
    "emolens-blazeface": lambda photos: run_emolens(photos, "blazeface"),
    "fer": run_fer,
}


def score(found, truth, photos):
    tp = fp = 0
    for p in photos:
        t, f = match(found.get(str(p), []), truth[str(p)])
        tp += t
        fp += f
    return tp, fp


def peak_rss_mib(photos_dir):
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", str(EMOLENS), "analyze", "--json", "-o", "/dev/null", str(photos_dir)],
                       capture_output=True, text=True, env=dict(os.environ, EMOLENS_LOG="warn"))
    dt = time.perf_counter() - t
    return int(p.stderr.strip().splitlines()[-1]) / 1024, dt


def busiest_processes(n=4):
    """Other processes using the CPU now (what ran alongside), for the record."""
    p = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True)
    rows = [r.split(None, 1) for r in p.stdout.strip().splitlines()]
    return ", ".join(f"{c.strip()} {u}%" for u, c in rows[:n] if float(u) >= 5) or "none"


def make_photos(out, per_size):
    stamp = out / "per_size.txt"
    if stamp.exists() and stamp.read_text() == str(per_size) and (out / "truth.json").exists():
        return  # make_photos.py is seeded: the same photos again
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([str(PEER_PY), str(ROOT / "bench/analyze/make_photos.py"), str(shared_dir() / "data/fer2013/test"), str(out), str(per_size)], check=True)
    stamp.write_text(str(per_size))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-size", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--many", type=int, default=1000, help="photos in the memory-flatness folder")
    ap.add_argument("--skip-fer", action="store_true")
    ap.add_argument("--detectors", default="seetaface,blazeface",
                    help="emolens detectors to run (comma-separated): seetaface (tool 'emolens'), blazeface")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "target/bench-analyze"))
    a = ap.parse_args()
    out = Path(a.out)
    make_photos(out, a.per_size)
    truth = json.loads((out / "truth.json").read_text())
    groups = defaultdict(list)
    for path in truth:
        groups[Path(path).parent.name].append(path)
    sizes = sorted(groups, key=lambda s: int(s.split("x")[0]))
    assets = ROOT / "assets/photos"
    for name, boxes in ASSET_TRUTH.items():
        truth[str(assets / name)] = boxes
    groups["assets"] = [str(assets / n) for n in ASSET_TRUTH]
    sizes.append("assets")
    names = {"seetaface": "emolens", "blazeface": "emolens-blazeface"}
    tools = [names[d] for d in a.detectors.split(",") if d] + ([] if a.skip_fer else ["fer"])

    print(f"\ncpu cores: {os.cpu_count()}; emolens: {EMOLENS}; model: {os.environ.get('EMOLENS_MODEL', 'bundled')}")
    print(f"running alongside at start: {busiest_processes()}; load average {os.getloadavg()[0]:.2f}")
    # (size, tool) -> lists over rounds
    proc, wall, found = defaultdict(list), defaultdict(list), {}
    for r in range(a.rounds):
        order = tools if r % 2 == 0 else tools[::-1]
        for size in sizes:
            photos = sorted(groups[size])
            for tool in order:
                secs, w, f = TOOLS[tool](photos)
                proc[size, tool].append(secs)
                wall[size, tool].append(w)
                found[size, tool] = f  # boxes are deterministic; the last round's are scored
        print(f"round {r + 1}/{a.rounds} done; load average {os.getloadavg()[0]:.2f}; busiest: {busiest_processes()}", flush=True)

    results = []
    print(f"\nmedians over {a.rounds} rounds; processing = after model load, wall = whole process")
    print(f"{'size':>10} {'photos':>6} {'faces':>5} {'tool':>18} | {'photos/s':>8} {'x fer':>6} | {'wall p/s':>8} {'x fer':>6} | {'faces/s':>8} | {'recall':>6} | {'precision':>9}")
    for size in sizes:
        photos = sorted(groups[size])
        n_true = sum(len(truth[p]) for p in photos)
        row = {"size": size, "photos": len(photos), "faces": n_true}
        for tool in tools:
            tp, fp = score(found[size, tool], truth, photos)
            p_s = statistics.median(proc[size, tool])
            w_s = statistics.median(wall[size, tool])
            row[tool] = {
                "photos_per_s": len(photos) / p_s,
                "photos_per_s_wall": len(photos) / w_s,
                "faces_per_s": (tp + fp) / p_s,
                "recall": tp / n_true if n_true else None,
                "precision": tp / (tp + fp) if tp + fp else None,
                "false_positives": fp,
            }
        results.append(row)
        f = row.get("fer")

        def cell(d, k, fmt):
            return "-" if d is None or d[k] is None else format(d[k], fmt)

        for tool in tools:
            e = row[tool]

            def ratio(k):
                return "-" if f is None else f"{e[k] / f[k]:.2f}x"

            print(f"{size:>10} {len(photos):>6} {n_true:>5} {tool:>18} | {cell(e, 'photos_per_s', '8.2f'):>8} {ratio('photos_per_s'):>6}"
                  f" | {cell(e, 'photos_per_s_wall', '8.2f'):>8} {ratio('photos_per_s_wall'):>6}"
                  f" | {cell(e, 'faces_per_s', '8.2f'):>8}"
                  f" | {cell(e, 'recall', '6.3f'):>6} | {cell(e, 'precision', '9.3f'):>9}")
    print("(assets: astronaut.png has 1 face, chelsea.png and rocket.jpg none; precision there counts false detections)")

    if not a.skip_memory:
        # Memory over a small and a large folder of the same photos (hard links, no extra disk).
        src = sorted(groups["1280x960"])
        for n in (100, a.many):
            d = out / f"many{n}"
            if d.exists():
                shutil.rmtree(d)
            d.mkdir()
            for i in range(n):
                os.link(src[i % len(src)], d / f"p{i:05d}.jpg")
            rss, dt = peak_rss_mib(d)
            results.append({"memory_photos": n, "peak_rss_mib": rss, "photos_per_s_wall": n / dt})
            print(f"memory: {n:>5} photos of 1280x960 -> peak RSS {rss:.0f} MiB ({n / dt:.2f} photos/s, wall)", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"running alongside at end: {busiest_processes()}; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
