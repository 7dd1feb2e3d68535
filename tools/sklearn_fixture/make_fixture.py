#!/usr/bin/env python3
"""Generates the scikit-learn parity fixture for emolens-eval's metrics.

Run once from the repository root (the output is committed):

    python3 -m venv .venv/tools && .venv/tools/bin/pip install scikit-learn numpy
    .venv/tools/bin/python tools/sklearn_fixture/make_fixture.py

It draws realistic random 7-class problems (imbalanced classes, one case with an empty class,
a classifier whose probabilities favour the true class with noise), rounds the probabilities to
float32 (what emolens' models output) and records scikit-learn's metrics on exactly those values.
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)
from sklearn.preprocessing import label_binarize

CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
OUT = os.path.join(
    os.path.dirname(__file__), "..", "..", "crates", "emolens-eval", "tests", "fixtures",
    "sklearn_metrics.json",
)


def make_case(rng, n, priors, strength):
    k = len(CLASSES)
    y = rng.choice(k, size=n, p=priors)
    logits = rng.normal(0.0, 1.0, size=(n, k))
    # A model that is right more often than not, and confuses some classes more than others.
    logits[np.arange(n), y] += strength * rng.uniform(0.0, 2.0, size=n)
    logits[:, 2] += 0.3 * (y == 5)  # sad faces look a little fearful
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p = p.astype(np.float32)
    return y, p


def metrics(y, p32):
    k = len(CLASSES)
    labels = list(range(k))
    p = p32.astype(np.float64)
    pred = p.argmax(axis=1)
    prec, rec, f1, sup = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    avgs = {}
    for avg in ("macro", "weighted", "micro"):
        a = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        avgs[avg] = {"precision": a[0], "recall": a[1], "f1": a[2]}
    onehot = label_binarize(y, classes=labels)
    per_class_auc = []
    for c in labels:
        col = onehot[:, c]
        per_class_auc.append(
            float(roc_auc_score(col, p[:, c])) if 0 < col.sum() < len(col) else None
        )
    present = [c for c in labels if per_class_auc[c] is not None]
    if len(present) == k:
        macro_auc = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)
        macro_method = "roc_auc_score(y, p, multi_class='ovr', average='macro')"
    else:
        # With an empty class, OvR AUC is undefined for it; average the defined columns.
        macro_auc = roc_auc_score(onehot[:, present], p[:, present], average="macro")
        macro_method = "roc_auc_score(onehot[:, present], p[:, present], average='macro')"
    micro_auc = roc_auc_score(onehot.ravel(), p.ravel())
    report = classification_report(
        y, pred, labels=labels, target_names=CLASSES, output_dict=True, zero_division=0
    )
    return {
        "accuracy": accuracy_score(y, pred),
        "precision": prec.tolist(),
        "recall": rec.tolist(),
        "f1": f1.tolist(),
        "support": sup.tolist(),
        "averages": avgs,
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
        "per_class_auc": per_class_auc,
        "macro_auc": float(macro_auc),
        "macro_auc_method": macro_method,
        "micro_auc": float(micro_auc),
        "top_k_accuracy": {
            str(kk): top_k_accuracy_score(y, p, k=kk, labels=labels) for kk in (1, 2, 3)
        },
        "classification_report": report,
    }


def main():
    rng = np.random.default_rng(20261129)
    cases = []
    # FER2013-like imbalance, disgust (index 1) empty.
    priors = np.array([0.13, 0.0, 0.14, 0.25, 0.17, 0.17, 0.14])
    priors /= priors.sum()
    y, p = make_case(rng, 900, priors, 1.6)
    cases.append(("imbalanced_empty_disgust", y, p))
    priors = np.array([0.133, 0.015, 0.143, 0.251, 0.173, 0.168, 0.117])
    priors /= priors.sum()
    y, p = make_case(rng, 1200, priors, 1.3)
    assert len(set(y.tolist())) == 7
    cases.append(("imbalanced_all_present", y, p))
    doc = {
        "generator": "tools/sklearn_fixture/make_fixture.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "classes": CLASSES,
        "cases": [
            {
                "name": name,
                "labels": y.tolist(),
                # float32 values written as the float64 that holds them exactly.
                "probs": [[float(v) for v in row] for row in p],
                "expected": metrics(y, p),
            }
            for name, y, p in cases
        ],
    }
    with open(OUT, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} (scikit-learn {sklearn.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
