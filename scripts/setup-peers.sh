#!/usr/bin/env bash
# Creates .venv-peers: the peer tools the benchmarks compare emolens against.
# - tensorflow-cpu + the PyPI `fer` package (Haar cascade + mini-Xception), installed with
#   --no-deps so that facenet-pytorch/mtcnn (only needed for fer's MTCNN detector) stay out;
#   the run-time needs of `from fer import FER` with the Haar path are listed explicitly.
# - numpy, scikit-learn for the model benchmarks; scikit-image for its public-domain test photo.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-peers
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# The folder ignores itself, whatever the repository's .gitignore says.
echo '*' > "$venv/.gitignore"
"$venv/bin/pip" install -q --upgrade pip
# fer's own module (fer.fer) imports cv2, numpy, PIL, requests, pkg_resources (setuptools) and
# tensorflow; nothing else on the Haar path. OpenCV 5 dropped cv2.CascadeClassifier: pin 4.x.
"$venv/bin/pip" install -q tensorflow-cpu numpy scikit-learn scikit-image \
  "opencv-python-headless<5" pillow requests "setuptools<81"
"$venv/bin/pip" install -q --no-deps fer
"$venv/bin/python" - <<'PY'
from fer.fer import FER  # fer 25.x no longer re-exports FER from the package root
import cv2, sklearn, skimage, tensorflow as tf
FER(mtcnn=False)  # loads the bundled Haar cascade and mini-Xception weights
print("peers ready: fer (Haar), tensorflow", tf.__version__, "opencv", cv2.__version__)
PY
