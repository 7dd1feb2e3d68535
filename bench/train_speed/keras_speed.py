"""Keras side of the training/inference speed comparison (bench/train_speed/run.sh).

Builds the same network as emolens from the same architecture file (the original design's
layer-name format, or emolens' own format for the layers it uses), then times, on synthetic
data: SGD training steps (forward + backward + update) at a batch size, inference at batch 64,
and latency at batch 1. Prints one JSON line, the same fields as `emolens arch bench`.
usage: keras_speed.py ARCH_FILE CHANNELS BATCH STEPS WARMUP [INFER_BATCH] [THREADS]
THREADS (0 = TensorFlow's default, all cores) sets both of TensorFlow's thread pools.
"""
import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402


def original_layers(spec):
    out = []
    items = list(spec.items())
    for i, (key, args) in enumerate(items):
        cls = key.split("_")[0]
        args = {k: v for k, v in args.items() if k != "input_shape"}
        # Both sides train on logits: the final softmax goes into the loss, as in emolens.
        if i == len(items) - 1 and args.get("activation") == "softmax":
            args["activation"] = None
        out.append(getattr(keras.layers, cls)(**args))
    return out


def emolens_layers(spec):
    out = []
    for l in spec["layers"]:
        t = l["type"]
        if t == "conv2d":
            out.append(keras.layers.Conv2D(l["filters"], l["kernel"], strides=l.get("stride", 1),
                                           padding=l.get("padding", "valid"), use_bias=l.get("bias", True),
                                           activation=l.get("activation")))
        elif t == "batch_norm":
            out.append(keras.layers.BatchNormalization())
        elif t == "activation":
            out.append(keras.layers.Activation(l["function"]))
        elif t == "max_pool2d":
            out.append(keras.layers.MaxPooling2D(l["size"], strides=l.get("stride")))
        elif t == "global_avg_pool":
            out.append(keras.layers.GlobalAveragePooling2D())
        elif t == "dropout":
            out.append(keras.layers.Dropout(l["rate"]))
        elif t == "flatten":
            out.append(keras.layers.Flatten())
        elif t == "dense":
            out.append(keras.layers.Dense(l["units"], use_bias=l.get("bias", True), activation=l.get("activation")))
        else:
            raise SystemExit(f"layer type {t} is not translated by this benchmark")
    return out


def main():
    path, channels, batch, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    infer_batch = int(sys.argv[6]) if len(sys.argv) > 6 else 64
    threads = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    spec = json.load(open(path))
    layers = emolens_layers(spec) if "layers" in spec else original_layers(spec)
    model = keras.Sequential([keras.Input((48, 48, channels))] + layers)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(1)
    x = rng.random((batch, 48, 48, channels), dtype=np.float32)
    y = (np.arange(batch) % 7).astype(np.int32)
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        if i >= warmup:
            times.append(batch / (time.perf_counter() - t))
    xi = rng.random((infer_batch, 48, 48, channels), dtype=np.float32)
    thr = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        model.predict_on_batch(xi)
        if i >= warmup:
            thr.append(infer_batch / (time.perf_counter() - t))
    x1 = xi[:1]
    lat = []
    for i in range((warmup + steps) * 10):
        t = time.perf_counter()
        model.predict_on_batch(x1)
        if i >= warmup:
            lat.append((time.perf_counter() - t) * 1000)
    print(json.dumps({
        "arch": os.path.splitext(os.path.basename(path))[0], "channels": channels, "batch_size": batch,
        "train_steps": steps, "train_images_per_s": float(np.median(times)), "infer_batch": infer_batch,
        "infer_images_per_s": float(np.median(thr)), "infer_latency_ms": float(np.median(lat)),
        "kernels": "tensorflow (oneDNN)", "threads": threads or os.cpu_count(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "framework": f"keras {keras.__version__} / tensorflow {tf.__version__}",
    }))


if __name__ == "__main__":
    main()
