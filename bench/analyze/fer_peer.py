#!/usr/bin/env python3
"""The peer side of the benchmark: the PyPI `fer` package's own pipeline (OpenCV Haar cascade +
mini-Xception, its defaults) over photo files. Prints one JSON line per photo with the boxes
found and the seconds spent (imread + detect_emotions), so the driver scores both tools alike.

usage: fer_peer.py PHOTO...
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import logging

import cv2
from fer.fer import FER

logging.getLogger("fer").setLevel(logging.ERROR)


def main():
    detector = FER(mtcnn=False)
    # Warm-up: the first call loads and initialises the model.
    detector.detect_emotions(cv2.imread(sys.argv[1]))
    for path in sys.argv[1:]:
        t = time.perf_counter()
        img = cv2.imread(path)
        faces = detector.detect_emotions(img)
        dt = time.perf_counter() - t
        boxes = [[int(v) for v in f["box"]] for f in faces]
        print(json.dumps({"source": path, "seconds": dt, "boxes": boxes}), flush=True)


if __name__ == "__main__":
    main()
