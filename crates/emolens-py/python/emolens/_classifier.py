"""`emolens.Classifier`: a `.emolens` model (the bundled one by default) on face crops, as
`emolens predict` runs it: `predict` on preprocessed float batches, `preprocess` and
`predict_crops` for crops prepared the model's own way."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from . import _inputs, _native


class Classifier:
    """An emotion classifier loaded from a model file (`model`: a `.emolens` path; None for
    the bundled model). `classes` are in output order; `meta` is the model file's metadata
    (input size, colour mode, normalisation, flip TTA, metrics...); `input_shape` is one
    preprocessed face's `(C, H, W)`."""

    def __init__(self, model: str | os.PathLike[str] | None = None):
        self._native = _native.Classifier(os.fspath(model) if model is not None else None)
        self.classes: list[str] = list(self._native.classes)
        self.meta: dict[str, Any] = json.loads(self._native.meta_json)
        self.input_shape: tuple[int, int, int] = tuple(self._native.input_shape)  # type: ignore[assignment]

    @property
    def runtime(self) -> str:
        """How the model runs on this machine (kernels and number format)."""
        return str(self._native.runtime)

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return f"<emolens.Classifier {self.meta.get('name')!r}: {c}x{h}x{w} -> {self.classes}>"

    def predict(self, x: Any) -> np.ndarray:
        """Class probabilities, shape (N, classes) float32, for a batch already preprocessed
        the model's way (see `preprocess`): shape (N, C, H, W), or (N, H, W) for a one-channel
        model. The model's flip test-time augmentation applies, as in `emolens predict`."""
        c, h, w = self.input_shape
        a = np.asarray(x)
        if a.dtype.kind != "f":
            raise TypeError(
                f"predict takes preprocessed float values, got {a.dtype}; "
                "for uint8 face crops use predict_crops (or preprocess first)"
            )
        if a.ndim == 3 and c == 1:
            a = a[:, None]
        if a.ndim != 4 or a.shape[1:] != (c, h, w):
            want = f"(N, {c}, {h}, {w})" + (f" or (N, {h}, {w})" if c == 1 else "")
            raise ValueError(f"predict expects a batch of shape {want}, got {a.shape}")
        n = a.shape[0]
        if n == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        a = np.ascontiguousarray(a, dtype=np.float32)
        out = self._native.predict(a.tobytes(), n)
        return np.frombuffer(out, dtype=np.float32).reshape(n, len(self.classes)).copy()

    def preprocess(self, crops: Any) -> np.ndarray:
        """Face crops prepared the model's own way (decode by content with EXIF orientation
        for files and bytes, colour mode, resize to the input size, normalisation from the
        model file): float32 (N, C, H, W). `crops`: a list of paths, encoded bytes, PIL images
        or uint8 HxW / HxWx3 arrays, or one uint8 array (N, H, W) or (N, H, W, 3)."""
        items = _inputs.crops(crops)
        c, h, w = self.input_shape
        out = self._native.preprocess(items)
        return np.frombuffer(out, dtype=np.float32).reshape(len(items), c, h, w).copy()

    def predict_crops(self, crops: Any) -> np.ndarray:
        """`predict(preprocess(crops))`: what `emolens predict` gives for these crops."""
        x = self.preprocess(crops)
        return self.predict(x)
