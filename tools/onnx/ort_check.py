"""Runs an ONNX model exported by `emolens model export` in ONNX Runtime, as a user outside
emolens would: every preprocessing step is read from the model's own metadata
(`emolens.preprocessing`), none is hard-coded here. Used by emolens' parity tests and by
bench/onnx/run.sh.

  ort_check.py predict MODEL.onnx IMAGES... --out OUT.json [--threads N] [--batch B]
      IMAGES: files or folders (searched recursively, sorted). OUT: {"classes": [...],
      "results": {path: [probabilities]}}, flip TTA applied as the metadata says.
  ort_check.py raw MODEL.onnx --input X.f32 --n N --out Y.f32 [--threads N]
      X: N preprocessed inputs, float32 little-endian, N*C*H*W values; Y: N*classes
      probabilities (one pass, no TTA).
  ort_check.py bench MODEL.onnx IMAGES... [--mode latency|throughput] [--threads N]
                    [--seconds S] [--batch B]
      One JSON line with the keys of emolens' classifier_speed example: latency of one face
      (median, p10, p90, mean ms), or the median throughput of batches of B faces. Faces are
      prepared before the clock starts; intra-op threads N, one inter-op thread.

Needs numpy, pillow and onnxruntime (tools/onnx/requirements.txt; scripts/install-test-deps.sh
installs them in .venv-test).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def metadata(sess):
    meta = sess.get_modelmeta().custom_metadata_map
    missing = [k for k in ("emolens.preprocessing", "emolens.classes") if k not in meta]
    if missing:
        sys.exit(f"the model has no {', '.join(missing)} metadata: export it with `emolens model export`")
    return json.loads(meta["emolens.preprocessing"]), json.loads(meta["emolens.classes"])


def image_files(items):
    out = []
    for item in items:
        if os.path.isdir(item):
            for root, _, names in os.walk(item):
                out += [os.path.join(root, n) for n in names if os.path.splitext(n)[1].lower() in EXTENSIONS]
        else:
            out.append(item)
    return sorted(out)


def prepare(path, pre):
    """One image as the model's [C, H, W] float input, following the metadata's steps."""
    img = Image.open(path)
    img.seek(0)  # first frame of an animation
    img = ImageOps.exif_transpose(img)
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint32)  # alpha dropped, grey repeated
    if pre["colour_mode"] == "grayscale":
        w = pre["luma_weights"]
        luma = (w[0] * rgb[..., 0] + w[1] * rgb[..., 1] + w[2] * rgb[..., 2]) // pre["luma_divisor"]
        planes = [luma.astype(np.uint8)]
    else:
        planes = [rgb[..., c].astype(np.uint8) for c in range(3)]
    size = (pre["resize"]["width"], pre["resize"]["height"])
    if planes[0].shape[::-1] != size:
        assert pre["resize"]["filter"] == "triangle", pre["resize"]
        # Pillow's bilinear filter widens with the scale when shrinking (antialiased), as the
        # triangle filter emolens uses.
        planes = [np.asarray(Image.fromarray(p).resize(size, Image.BILINEAR)) for p in planes]
    scale = np.asarray(pre["scale"], dtype=np.float32)
    offset = np.asarray(pre["offset"], dtype=np.float32)
    return np.stack([p.astype(np.float32) * scale[c] + offset[c] for c, p in enumerate(planes)])


def run(sess, x, batch):
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def predict_tta(sess, pre, x, batch):
    """Probabilities with flip test-time augmentation as the metadata states it."""
    p = run(sess, x, batch)
    if pre.get("flip_tta"):
        below = pre.get("flip_tta_below")
        unsure = np.nonzero(p.max(axis=1) < (np.inf if below is None else below))[0]
        if len(unsure):
            q = run(sess, np.ascontiguousarray(x[unsure][..., ::-1]), batch)
            p[unsure] = (p[unsure] + q) / 2
    return p


def cmd_predict(a):
    sess = session(a.model, a.threads)
    pre, classes = metadata(sess)
    files = image_files(a.images)
    if not files:
        sys.exit(f"no images in {a.images}")
    x = np.stack([prepare(f, pre) for f in files])
    p = predict_tta(sess, pre, x, a.batch)
    with open(a.out, "w") as f:
        json.dump({"classes": classes, "results": {path: row.tolist() for path, row in zip(files, p)}}, f)
    print(f"{len(files)} images, ORT {ort.__version__}, flip TTA {pre.get('flip_tta')} below {pre.get('flip_tta_below')}", file=sys.stderr)


def cmd_raw(a):
    sess = session(a.model, a.threads)
    shape = sess.get_inputs()[0].shape[1:]
    x = np.fromfile(a.input, dtype="<f4").reshape([a.n] + list(shape))
    run(sess, x, max(a.n, 1)).astype("<f4").tofile(a.out)


def timed(f, seconds, at_least):
    """Seconds of each call of f: `at_least` calls, then more until `seconds` have passed (after
    a warm-up)."""
    for _ in range(3):
        f()
    times, start = [], time.perf_counter()
    while len(times) < at_least or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return sorted(times)


def cmd_bench(a):
    sess = session(a.model, a.threads)
    pre, _ = metadata(sess)
    files = image_files(a.images)
    x = np.stack([prepare(f, pre) for f in files])
    name = sess.get_inputs()[0].name
    out = {"tool": "onnxruntime " + ort.__version__, "mode": a.mode, "threads": a.threads, "images": len(x)}
    if a.mode == "latency":
        faces = [np.ascontiguousarray(x[i : i + 1]) for i in range(len(x))]
        i = iter(range(10**12))
        t = timed(lambda: sess.run(None, {name: faces[next(i) % len(faces)]}), a.seconds, len(faces))
        pick = lambda q: t[min(len(t) - 1, int(q * len(t)))] * 1e3
        out["calls"] = len(t)
        out["latency_ms"] = {"median": pick(0.5), "p10": pick(0.1), "p90": pick(0.9), "mean": sum(t) / len(t) * 1e3}
    else:
        starts = list(range(0, len(x) - a.batch + 1, a.batch))
        batches = [np.ascontiguousarray(x[s : s + a.batch]) for s in starts]
        i = iter(range(10**12))
        t = timed(lambda: sess.run(None, {name: batches[next(i) % len(batches)]}), a.seconds, len(batches))
        out["batch"] = a.batch
        out["batches"] = len(t)
        out["throughput_median_batch_images_per_s"] = a.batch / t[len(t) // 2]
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("predict")
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    r = sub.add_parser("raw")
    r.add_argument("model")
    r.add_argument("--input", required=True)
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--threads", type=int, default=1)
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("images", nargs="+")
    b.add_argument("--mode", choices=["latency", "throughput"], default="latency")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--seconds", type=float, default=5)
    b.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    {"predict": cmd_predict, "raw": cmd_raw, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
