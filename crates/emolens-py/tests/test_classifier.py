"""`emolens.Classifier` against `emolens predict --json` on real FER2013 test crops: files,
encoded bytes, uint8 arrays and the preprocessed float batch all give the CLI's probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import emolens
from conftest import CLASSES, ROOT, fer_crops, run_cli


def cli_predict(files: list[Path], *args: str) -> np.ndarray:
    """`emolens predict --json` in one batch, as the Classifier's one call (kernels may block
    a batch differently by its size, so the last bits could differ between batchings)."""
    batch = ["--batch-size", str(len(files))]
    out = json.loads(run_cli("predict", "--json", *batch, *args, *map(str, files)).stdout)
    assert all(r["status"] == "ok" for r in out["results"]), out
    return np.array(
        [[r["probabilities"][c] for c in out["classes"]] for r in out["results"]], dtype=np.float32
    )


@pytest.fixture(scope="module")
def classifier() -> emolens.Classifier:
    return emolens.Classifier()


def test_metadata(classifier: emolens.Classifier) -> None:
    assert classifier.classes == CLASSES
    assert classifier.input_shape == (1, 48, 48)
    assert classifier.meta["classes"] == CLASSES
    assert classifier.meta["input"]["colour_mode"] == "grayscale"
    assert classifier.runtime


def test_fer_crops_match_emolens_predict(classifier: emolens.Classifier) -> None:
    files = fer_crops(10)
    expected = cli_predict(files)
    from_files = classifier.predict_crops(files)
    assert from_files.dtype == np.float32 and from_files.shape == (70, 7)
    np.testing.assert_array_equal(from_files, expected)
    np.testing.assert_array_equal(classifier.predict_crops([f.read_bytes() for f in files]), expected)
    x = classifier.preprocess(files)
    assert x.shape == (70, 1, 48, 48) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    np.testing.assert_array_equal(classifier.predict(x), expected)
    np.testing.assert_array_equal(classifier.predict(x[:, 0]), expected)  # (N, H, W)
    # Real faces, a real model: far above chance (1/7) on 70 faces, 10 per class (the bundled
    # model scores about 62 % on FER2013 test, less on its rare classes).
    labels = np.repeat(np.arange(7), 10)
    assert (expected.argmax(1) == labels).mean() > 0.4


def test_uint8_arrays_match_emolens_predict(classifier: emolens.Classifier, tmp_path: Path) -> None:
    # PNG copies: emolens and Pillow read the same pixels from a PNG (not from a JPEG).
    pngs = []
    for f in fer_crops(4):
        p = tmp_path / f"{f.parent.name}-{f.stem}.png"
        Image.open(f).save(p)
        pngs.append(p)
    expected = cli_predict(pngs)
    arrays = [np.asarray(Image.open(p)) for p in pngs]
    np.testing.assert_array_equal(classifier.predict_crops(arrays), expected)
    np.testing.assert_array_equal(classifier.predict_crops(np.stack(arrays)), expected)
    np.testing.assert_array_equal(classifier.predict_crops([Image.open(p) for p in pngs]), expected)
    # A larger RGB crop is resized and turned to luma by the model's own preprocessing.
    big = Image.open(pngs[0]).convert("RGB").resize((96, 96))
    big.save(tmp_path / "big.png")
    np.testing.assert_array_equal(
        classifier.predict_crops([np.asarray(big)]), cli_predict([tmp_path / "big.png"])
    )


def test_a_model_file_by_path(tmp_path: Path) -> None:
    bundled = ROOT / "models/default.emolens"
    clf = emolens.Classifier(bundled)
    files = fer_crops(1)
    np.testing.assert_array_equal(clf.predict_crops(files), cli_predict(files, "--model", str(bundled)))


def test_errors(classifier: emolens.Classifier, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    out = json.loads(run_cli("predict", "--json", str(bad)).stdout)["results"][0]
    with pytest.raises(emolens.EmolensError) as e:
        classifier.predict_crops([bad])
    assert str(e.value) == out["error"]
    missing_model = tmp_path / "missing.emolens"
    p = run_cli("predict", "--model", str(missing_model), str(bad), check=False)
    with pytest.raises(emolens.EmolensError) as e:
        emolens.Classifier(missing_model)
    assert f"error: {e.value}" in p.stderr.splitlines()
    with pytest.raises(ValueError, match=r"\(N, 1, 48, 48\)"):
        classifier.predict(np.zeros((2, 3, 48, 48), dtype=np.float32))
    with pytest.raises(TypeError, match="predict_crops"):
        classifier.predict(np.zeros((2, 48, 48), dtype=np.uint8))
