"""`emolens.analyze` against `emolens analyze --json` on real photos: the same objects, for
paths, folders, bytes, PIL images and numpy arrays; errors with the CLI's messages; the GIL
released while Rust works."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import emolens
from conftest import PHOTOS, ROOT, cli_analyze, run_cli


def without_source(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "source"}


def test_paths_and_folders_match_the_cli(composites: list[Path]) -> None:
    inputs = [str(PHOTOS), *map(str, composites)]
    cli = cli_analyze(*inputs)
    result = emolens.analyze(inputs)
    assert [p.to_dict() for p in result] == cli
    # The photos are real: the astronaut's face and the four faces of each composite are found.
    faces = {Path(p.source).name: len(p.faces) for p in result}
    assert faces["astronaut.png"] == 1 and faces["rocket.jpg"] == 0, faces
    assert all(faces[p.name] == 4 for p in composites), faces
    probs = [f.probabilities for _, f in result.faces if f.classified]
    assert probs and all(abs(sum(p.values()) - 1) < 1e-4 for p in probs)


def test_bytes_pil_and_arrays_match_the_cli(composites: list[Path]) -> None:
    files = [PHOTOS / "astronaut.png", composites[0], composites[1]]
    cli = [without_source(d) for d in cli_analyze(*map(str, files))]
    as_bytes = emolens.analyze([f.read_bytes() for f in files])
    assert [p.source for p in as_bytes] == ["bytes[0]", "bytes[1]", "bytes[2]"]
    assert [without_source(p.to_dict()) for p in as_bytes] == cli
    # PNGs hold exact pixels: an array or PIL image of them is the file itself.
    images = [Image.open(f) for f in files]
    arrays = [np.asarray(im) for im in images]
    assert arrays[1].ndim == 2 and arrays[2].ndim == 3
    for given in (arrays, images):
        got = emolens.analyze(given, names=["a", "b", "c"])
        assert [without_source(p.to_dict()) for p in got] == cli
        assert [p.source for p in got] == ["a", "b", "c"]
    single = emolens.analyze(arrays[2])
    assert len(single) == 1 and without_source(single[0].to_dict()) == cli[2]


def test_to_pandas_has_one_row_per_face(composites: list[Path]) -> None:
    result = emolens.analyze([str(PHOTOS), str(composites[0])])
    df = result.to_pandas()
    n_faces = sum(max(1, len(p.faces)) for p in result)
    assert len(df) == n_faces
    rows = df[df["source"] == str(composites[0])]
    assert len(rows) == 4 and list(rows["face"]) == [1, 2, 3, 4]
    face = result[-1].faces[0]
    assert rows.iloc[0]["top_emotion"] == face.top_emotion
    assert rows.iloc[0]["p_happy"] == pytest.approx(face.probabilities["happy"])
    assert "no face found" in df[df["source"].str.endswith("rocket.jpg")]["notes"].iloc[0]


def test_to_pandas_without_pandas_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pandas(name: str, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    result = emolens.analyze(str(PHOTOS / "astronaut.png"))
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match="pip install pandas"):
        result.to_pandas()


def test_bad_files_raise_the_cli_messages(tmp_path: Path) -> None:
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is not a photo")
    cut = tmp_path / "cut.jpg"
    full = (PHOTOS / "rocket.jpg").read_bytes()
    cut.write_bytes(full[: len(full) // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    bad = [not_image, cut, empty]
    cli = cli_analyze(*map(str, bad))
    assert all("error" in d for d in cli), cli
    for path, expected in zip(bad, cli):
        with pytest.raises(emolens.EmolensError) as e:
            emolens.analyze(str(path))
        assert str(e.value) == expected["error"]
    kept = emolens.analyze([str(p) for p in bad] + [str(PHOTOS / "astronaut.png")], on_error="keep")
    assert [p.to_dict() for p in kept[:3]] == cli
    assert [p.status for p in kept[:3]] == [d["status"] for d in cli] and kept[3].ok


def test_missing_path_and_bad_model_raise_the_cli_messages(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jpg"
    p = run_cli("analyze", str(missing), check=False)
    assert p.returncode == 1
    with pytest.raises(emolens.EmolensError) as e:
        emolens.analyze(str(missing))
    assert f"error: {e.value}" in p.stderr.splitlines()
    bad_model = tmp_path / "bad.emolens"
    bad_model.write_bytes(b"not a model")
    p = run_cli("analyze", "--model", str(bad_model), str(PHOTOS), check=False)
    with pytest.raises(emolens.EmolensError) as e:
        emolens.analyze(str(PHOTOS), model=bad_model)
    assert f"error: {e.value}" in p.stderr.splitlines()
    with pytest.raises(TypeError, match="uint8"):
        emolens.analyze(np.zeros((10, 10), dtype=np.float32))


def heartbeat_gaps(work) -> tuple[float, float]:
    """Runs `work` in two threads at once while this thread ticks every millisecond; returns
    the longest time between ticks and how long the two threads took."""
    ticks = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        work()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    while any(t.is_alive() for t in threads):
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    gaps = np.diff([start, *ticks])
    return float(gaps.max()), took


def test_threads_run_in_parallel_with_the_gil_released(composites: list[Path]) -> None:
    photos = [str(p) for p in composites] * 4 + [str(PHOTOS / "astronaut.png")] * 4
    analyzer = emolens.Analyzer()
    items = [(name, data) for name, data, _ in emolens._inputs.photos(photos, None)]
    analyzer._native.analyze(items)  # warm

    # Control: holding the GIL, this thread cannot tick while Rust works (shows the test works).
    held_gap, held_took = heartbeat_gaps(lambda: analyzer._native.analyze(items, 16, False))
    assert held_gap > 0.25 * held_took / 2, (held_gap, held_took)
    # Released: this thread ticks throughout, and both calls were in Rust at the same time.
    spans: list[tuple[float, float]] = []

    def timed() -> None:
        t0 = time.perf_counter()
        result = analyzer.analyze(photos)
        spans.append((t0, time.perf_counter()))
        assert len(result) == len(photos)

    gap, took = heartbeat_gaps(timed)
    assert gap < 0.1 * took, (gap, took)
    (a0, a1), (b0, b1) = spans
    overlap = min(a1, b1) - max(a0, b0)
    assert overlap > 0.5 * min(a1 - a0, b1 - b0), spans


def test_example_script_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    script = str(ROOT / "examples/python/analyze_photos.py")
    monkeypatch.setattr("sys.argv", [script])  # no video: the video cell is test_video.py's
    runpy.run_path(script, run_name="__main__")
