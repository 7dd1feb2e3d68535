"""Renders the measured part of MODEL_CARD.md from an `emolens eval` report.

    emolens eval --data ../shared/data/fer2013 --exclude-train-duplicates ../shared/data/fer2013/train --out reports/model-card
    python3 tools/model_card/render.py reports/model-card/report.json > reports/model-card/metrics.md

Every number in the card's "Measured performance" section comes from that report.
"""
import json
import sys


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


def main():
    r = json.load(open(sys.argv[1]))
    print(f"Model `{r['model_name']}`, data `{r['data_dir']}`, flip TTA {r['flip_tta']}, "
          f"{r['images_per_second']:.0f} images/s over {r['seconds']:.1f} s.\n")
    for s in r["sections"]:
        print(section(s["title"], s["report"]))


if __name__ == "__main__":
    main()
