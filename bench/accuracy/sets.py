#!/usr/bin/env python3
"""The labelled sets of bench/accuracy, as lists both tools read: one TSV per set (image path,
true class name), the union of their files for fer, and sets.json describing each set.

A set is either a folder of class folders (`<dir>/<class>/<file>`; every file whose name does
not start with a dot, as `emolens eval` takes them) or the FER+ majority labels of FER2013's
files (`ferplus`: the rows of one usage of votes.csv). The FER+ rule is emolens' own
(`emolens_data::ferplus::FerPlusRow::majority`), restated here so that the fer side gets its
labels without emolens: the unique plurality among all ten vote columns (neutral, happiness,
surprise, sadness, anger, disgust, fear, contempt, unknown, NF), kept only when it is one of
the seven emotions; rows without votes, with a tie for the most votes or with a contempt,
unknown or NF plurality are left out. compare.py then checks that emolens evaluated the same
number of files per class in every set.

usage:
  sets.py --out DIR --set KEY=folders:DIR [--set KEY=ferplus:VOTES_CSV:FER2013_ROOT:USAGE ...]
          [--title KEY=TEXT ...]
USAGE is PrivateTest (FER+ test) or PublicTest (FER+ validation).
"""
import argparse
import csv
import json
import os
import sys

VOTE_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
# FER+ column -> emolens' canonical class name (the other three columns are not emotions here).
SEVEN = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad", "anger": "angry", "disgust": "disgust", "fear": "fear"}


def ferplus_majority(votes):
    """(class name, None) for a row with a label, (None, reason) for one left out."""
    if votes is None:
        return None, "no FER+ votes"
    top = max(votes)
    at_top = [i for i, v in enumerate(votes) if v == top]
    if top == 0 or len(at_top) > 1:
        return None, "no unique plurality (tie)"
    column = VOTE_COLUMNS[at_top[0]]
    if column not in SEVEN:
        return None, f"plurality is {column}"
    return SEVEN[column], None


def ferplus_set(votes_csv, root, usage):
    files, left_out, candidates = [], {}, 0
    with open(votes_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["usage"] != usage:
                continue
            candidates += 1
            cols = [row[c].strip() for c in VOTE_COLUMNS]
            votes = None if all(c == "" for c in cols) else [int(c) for c in cols]
            label, reason = ferplus_majority(votes)
            if label is None:
                left_out[reason] = left_out.get(reason, 0) + 1
            else:
                files.append((os.path.join(root, row["file"]), label))
    if not files:
        sys.exit(f"error: {votes_csv}: no {usage} row has a FER+ majority among the seven emotions")
    return sorted(files), {"candidates": candidates, "left_out": left_out}


def folder_set(d):
    if not os.path.isdir(d):
        sys.exit(f"error: {d}: not a folder; a labelled set is <dir>/<class>/<images>")
    files = []
    for c in sorted(os.listdir(d)):
        cd = os.path.join(d, c)
        if c.startswith(".") or not os.path.isdir(cd):
            continue
        for name in sorted(os.listdir(cd)):
            p = os.path.join(cd, name)
            if not name.startswith(".") and os.path.isfile(p):
                files.append((p, c))
    if not files:
        sys.exit(f"error: {d}: no images in class folders")
    return files, {"candidates": len(files), "left_out": {}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], required=True)
    ap.add_argument("--title", action="append", default=[])
    a = ap.parse_args()
    titles = dict(t.split("=", 1) for t in a.title)
    os.makedirs(os.path.join(a.out, "sets"), exist_ok=True)
    described, union = [], set()
    for spec in a.set:
        key, source = spec.split("=", 1)
        kind, _, rest = source.partition(":")
        if kind == "folders":
            files, info = folder_set(rest)
            labels = "class folders"
        elif kind == "ferplus":
            votes, root, usage = rest.rsplit(":", 2)
            files, info = ferplus_set(votes, root, usage)
            labels = f"FER+ majority ({usage} rows of {votes})"
        else:
            sys.exit(f"error: --set {spec}: the source is folders:DIR or ferplus:VOTES:ROOT:USAGE")
        files = [(os.path.realpath(p), c) for p, c in files]
        tsv = os.path.join(a.out, "sets", f"{key}.tsv")
        with open(tsv, "w") as f:
            for p, c in files:
                f.write(f"{p}\t{c}\n")
        union.update(p for p, _ in files)
        described.append({"key": key, "title": titles.get(key, key), "labels": labels, "files": tsv, "n": len(files)} | info)
        left = sum(info["left_out"].values())
        print(f"set {key}: {len(files)} files ({labels}; {left} left out)", file=sys.stderr)
    with open(os.path.join(a.out, "sets.json"), "w") as f:
        json.dump(described, f, indent=1)
    with open(os.path.join(a.out, "fer-files.txt"), "w") as f:
        f.write("".join(p + "\n" for p in sorted(union)))


if __name__ == "__main__":
    main()
