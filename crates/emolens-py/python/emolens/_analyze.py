"""`emolens.analyze` and `emolens.Analyzer`: every face in photos, with box, probabilities, top
emotion and quality, and every viewer of reaction videos with their per-second timeline, as
`emolens analyze --json` gives them (each photo and video comes from the native module as the
CLI's JSON line), plus `Analysis.to_pandas()`: one row per face, or per viewer per second."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, Union, overload

from . import _inputs, _native
from ._native import EmolensError
from ._video import Video


@dataclass(frozen=True)
class Box:
    """A box in the photo's pixels (after EXIF orientation): top-left corner and size."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Quality:
    """A face's quality signals: box side (px), sharpness (Laplacian variance at 64x64),
    brightness (mean luma) and contrast (luma standard deviation)."""

    face_px: float
    sharpness: float
    brightness: float
    contrast: float


@dataclass(frozen=True)
class Face:
    """One face: `box` (the detector's), `crop` (what the classifier saw), `probabilities`
    (class -> probability, in the model's order; empty when too small to classify),
    `top_emotion` (`"uncertain"` when the quality gate fails, see `uncertain_reasons`),
    `predicted_emotion` (the model's top class even when uncertain) and `confidence`."""

    box: Box
    crop: Box
    detector_score: float
    probabilities: dict[str, float]
    top_emotion: str
    predicted_emotion: str | None
    confidence: float
    quality: Quality
    uncertain: bool
    uncertain_reasons: list[str]
    classified: bool

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Face":
        return Face(
            box=Box(**d["bbox"]),
            crop=Box(**d["crop"]),
            detector_score=d["detector_score"],
            probabilities={p["emotion"]: p["probability"] for p in d["probabilities"]},
            top_emotion=d["top_emotion"],
            predicted_emotion=d["predicted_emotion"],
            confidence=d["confidence"],
            quality=Quality(**d["quality"]),
            uncertain=d["uncertain"],
            uncertain_reasons=list(d["uncertain_reasons"]),
            classified=d["classified"],
        )


@dataclass(frozen=True)
class Photo:
    """One photo's result: its faces and summary, or (with `on_error="keep"`) its `error` and
    the HTTP `status` the server would answer. `to_dict()` is the CLI's `--json` object."""

    source: str
    width: int
    height: int
    faces: list[Face]
    summary: dict[str, Any]
    notes: list[str]
    error: str | None = None
    status: int = 200
    _raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    kind = "photo"

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The object `emolens analyze --json` writes for this photo."""
        if self.error is not None:
            return {"source": self.source, "error": self.error, "status": self.status}
        return json.loads(json.dumps(self._raw))

    @staticmethod
    def from_json(source: str, text: str) -> "Photo":
        d = json.loads(text)
        return Photo(
            source=d["source"],
            width=d["width"],
            height=d["height"],
            faces=[Face.from_dict(f) for f in d["faces"]],
            summary=d["summary"],
            notes=list(d["notes"]),
            _raw=d,
        )

    @staticmethod
    def failed(source: str, error: str, status: int) -> "Photo":
        return Photo(source, 0, 0, [], {}, [], error=error, status=status)


Result = Union[Photo, Video]


class Analysis(Sequence[Result]):
    """What was analysed, in the CLI's order: the photos (input order), then the videos (input
    order). A sequence of `Photo` and `Video`; `photos` and `videos` hold each kind."""

    def __init__(self, results: list[Result], classes: list[str]):
        self.results = results
        self.classes = classes

    @property
    def photos(self) -> list[Photo]:
        return [r for r in self.results if isinstance(r, Photo)]

    @property
    def videos(self) -> list[Video]:
        return [r for r in self.results if isinstance(r, Video)]

    @overload
    def __getitem__(self, i: int) -> Result: ...
    @overload
    def __getitem__(self, i: slice) -> list[Result]: ...
    def __getitem__(self, i: int | slice) -> Result | list[Result]:
        return self.results[i]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __repr__(self) -> str:
        photos, videos = self.photos, self.videos
        faces = sum(len(p.faces) for p in photos)
        failed = sum(not r.ok for r in self.results)
        text = f"{len(photos)} photos, {faces} faces"
        if videos:
            text += f", {len(videos)} videos, {sum(len(v.viewers) for v in videos)} viewers"
        return f"<emolens.Analysis: {text}, {failed} failed>"

    @property
    def faces(self) -> list[tuple[Photo, Face]]:
        """Every face of the photos with its photo, in order."""
        return [(p, f) for p in self.photos for f in p.faces]

    def to_dicts(self) -> list[dict[str, Any]]:
        """The lines `emolens analyze --json` writes, as dicts."""
        return [r.to_dict() for r in self.results]

    def to_pandas(self) -> Any:
        """A pandas DataFrame. Photos: one row per face (a photo with no face, or that failed,
        gets one row with `notes` or `error`), the columns of `emolens analyze --csv` plus the
        crop box, brightness, contrast and `classified`; `p_<class>` holds the probabilities.
        Videos: one row per viewer per second, the columns of `emolens analyze --csv` for
        videos. Photos and videos have different columns: one kind per table, as in the CLI."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(
                "Analysis.to_pandas() needs pandas, which is not installed: "
                "pip install pandas (or pip install 'emolens[pandas]')"
            ) from e
        photos, videos = self.photos, self.videos
        if photos and videos:
            raise ValueError(
                "to_pandas() makes one table, and photos (a row per face) and videos (a row per "
                f"viewer per second) have different columns: make one table of the {len(photos)} "
                f"photo(s) and one of the {len(videos)} video(s), e.g. "
                "Analysis(a.photos, a.classes).to_pandas() and Analysis(a.videos, a.classes).to_pandas()"
            )
        if videos:
            vrows = [row for v in videos for row in v.rows()]
            df = pd.DataFrame(vrows, columns=Video.columns(self.classes))
            for c in ("viewer", "second", "frames", "frames_with_face"):
                df[c] = df[c].astype("Int64")
            df["classified_faces"] = df["classified_faces"].astype("Int64")
            df["uncertain_faces"] = df["uncertain_faces"].astype("Int64")
            return df
        rows = []
        for p in photos:
            base = {"source": p.source, "width": p.width, "height": p.height}
            tail = {"notes": "; ".join(p.notes), "error": p.error or ""}
            if not p.faces:
                rows.append({**base, **tail})
            for i, f in enumerate(p.faces):
                row = {
                    **base,
                    "face": i + 1,
                    "x": f.box.x,
                    "y": f.box.y,
                    "box_width": f.box.width,
                    "box_height": f.box.height,
                    "crop_x": f.crop.x,
                    "crop_y": f.crop.y,
                    "crop_side": f.crop.width,
                    "detector_score": f.detector_score,
                    "face_px": f.quality.face_px,
                    "sharpness": f.quality.sharpness,
                    "brightness": f.quality.brightness,
                    "contrast": f.quality.contrast,
                    "top_emotion": f.top_emotion,
                    "predicted_emotion": f.predicted_emotion,
                    "confidence": f.confidence,
                    "uncertain": f.uncertain,
                    "uncertain_reasons": "; ".join(f.uncertain_reasons),
                    "classified": f.classified,
                }
                for c in self.classes:
                    row[f"p_{c}"] = f.probabilities.get(c, float("nan"))
                rows.append({**row, **tail})
        columns = (
            ["source", "width", "height", "face", "x", "y", "box_width", "box_height"]
            + ["crop_x", "crop_y", "crop_side", "detector_score", "face_px", "sharpness"]
            + ["brightness", "contrast", "top_emotion", "predicted_emotion", "confidence"]
            + ["uncertain", "uncertain_reasons", "classified"]
            + [f"p_{c}" for c in self.classes]
            + ["notes", "error"]
        )
        df = pd.DataFrame(rows, columns=columns)
        df["face"] = df["face"].astype("Int64")
        return df


class Analyzer:
    """A loaded model and face-analysis settings, reusable across calls (`emolens.analyze`
    keeps a few of these). `model`: a `.emolens` file, or None for the bundled model. The
    settings are `emolens analyze`'s flags; None keeps the CLI's default."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        assume_crop: bool = False,
        min_face_px: int | None = None,
        margin: float | None = None,
        min_confidence: float | None = None,
        min_sharpness: float | None = None,
        min_detector_score: float | None = None,
        detect_max_side: int | None = None,
    ):
        self._native = _native.Analyzer(
            os.fspath(model) if model is not None else None,
            assume_crop=assume_crop,
            min_face_px=min_face_px,
            margin=margin,
            min_confidence=min_confidence,
            min_sharpness=min_sharpness,
            min_detector_score=min_detector_score,
            detect_max_side=detect_max_side,
        )
        self.classes: list[str] = list(self._native.classes)

    def analyze(
        self,
        photos: Any,
        *,
        names: Sequence[str] | None = None,
        on_error: str = "raise",
        batch_size: int = 16,
        fps: float = 5.0,
        video_batch: int = 8,
        max_seconds: float = 7200.0,
        track_gap: float = 1.0,
        progress: Callable[[float, float | None, int, int], Any] | None = None,
    ) -> Analysis:
        """Finds and classifies every face in `photos` and videos (see `emolens.analyze`)."""
        if on_error not in ("raise", "keep"):
            raise ValueError(f'on_error must be "raise" or "keep", got {on_error!r}')
        items = _inputs.photos(photos, names)
        photo_items = [(name, data) for name, data, video in items if not video]
        video_items = [(name, data) for name, data, video in items if video]
        result: list[Result] = []
        for source, text, error, status in self._native.analyze(photo_items, batch_size):
            if error is not None:
                if on_error == "raise":
                    raise EmolensError(error)
                result.append(Photo.failed(source, error, status))
            else:
                result.append(Photo.from_json(source, text))
        for name, path in video_items:
            _, text, error, status = self._native.analyze_video(
                path, fps, video_batch, max_seconds, track_gap, progress
            )
            if error is not None:
                if on_error == "raise":
                    raise EmolensError(error)
                result.append(Video.failed(name, error, status, self.classes))
            else:
                # `name` differs from the path where `names` gave one.
                result.append(Video.from_json(text, self.classes, source=name))
        return Analysis(result, self.classes)


_cache: dict[tuple[Any, ...], Analyzer] = {}
_cache_lock = threading.Lock()


def analyze(
    photos: Any,
    *,
    model: str | os.PathLike[str] | None = None,
    names: Sequence[str] | None = None,
    on_error: str = "raise",
    batch_size: int = 16,
    assume_crop: bool = False,
    min_face_px: int | None = None,
    margin: float | None = None,
    min_confidence: float | None = None,
    min_sharpness: float | None = None,
    min_detector_score: float | None = None,
    detect_max_side: int | None = None,
    fps: float = 5.0,
    video_batch: int = 8,
    max_seconds: float = 7200.0,
    track_gap: float = 1.0,
    progress: Callable[[float, float | None, int, int], Any] | None = None,
) -> Analysis:
    """Finds every face in `photos` and classifies its expression: `emolens analyze --json`.

    `photos`: one photo or a list of them: paths (str or os.PathLike; folders are searched
    recursively as the CLI searches them), encoded bytes (any format emolens reads, EXIF
    orientation applied), PIL images, or uint8 numpy arrays HxW (grayscale) or HxWx3 (RGB).
    Paths may be reaction videos (MP4, MOV, MKV, WebM, ...; told apart by extension or
    content): each is sampled at `fps` frames per second, its viewers tracked and summed up per
    second (`Video`; `video_batch`, `max_seconds` and `track_gap` are the CLI's `--video-batch`,
    `--max-seconds` and `--track-gap`; `progress(seconds, duration, frames, viewers)` is called
    as a video goes). Videos come after the photos, as in the CLI's output.
    `names` overrides the source names (default: the path, `bytes[i]`, `array[i]`, `image[i]`).
    `on_error="raise"` (default) raises `EmolensError` with the CLI's message for the first
    photo that fails; `"keep"` returns it as a `Photo` with `error` and `status` set.
    `model` and the settings as in `Analyzer`; the loaded model is kept for the next call.
    """
    settings = (
        os.fspath(model) if model is not None else None,
        assume_crop,
        min_face_px,
        margin,
        min_confidence,
        min_sharpness,
        min_detector_score,
        detect_max_side,
    )
    with _cache_lock:
        analyzer = _cache.get(settings)
        if analyzer is None:
            analyzer = Analyzer(
                model,
                assume_crop=assume_crop,
                min_face_px=min_face_px,
                margin=margin,
                min_confidence=min_confidence,
                min_sharpness=min_sharpness,
                min_detector_score=min_detector_score,
                detect_max_side=detect_max_side,
            )
            if len(_cache) >= 4:
                _cache.pop(next(iter(_cache)))
            _cache[settings] = analyzer
    return analyzer.analyze(
        photos,
        names=names,
        on_error=on_error,
        batch_size=batch_size,
        fps=fps,
        video_batch=video_batch,
        max_seconds=max_seconds,
        track_gap=track_gap,
        progress=progress,
    )
