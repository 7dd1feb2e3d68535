"""Type stubs of the public API of `emolens` (the package's __init__.py has the docs)."""

import os
from typing import Any, Callable, Iterator, Literal, Sequence, Union, overload

import numpy as np

__version__: str

class EmolensError(Exception):
    """An emolens failure, with the message the `emolens` CLI prints for it."""

class Box:
    x: float
    y: float
    width: float
    height: float

class Quality:
    face_px: float
    sharpness: float
    brightness: float
    contrast: float

class Face:
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

class Photo:
    source: str
    width: int
    height: int
    faces: list[Face]
    summary: dict[str, Any]
    notes: list[str]
    error: str | None
    status: int
    kind: Literal["photo"]
    @property
    def ok(self) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...

class ViewerSecond:
    second: int
    frames: int
    frames_with_face: int
    face_share: float
    classified_faces: int
    uncertain_faces: int
    probabilities: dict[str, float]
    valence: float | None
    top_emotion: str | None

class Viewer:
    viewer: int
    first_s: float
    last_s: float
    frames_with_face: int
    mean_probabilities: dict[str, float]
    valence: float | None
    top_emotion: str | None
    seconds: list[ViewerSecond]

class Video:
    source: str
    info: dict[str, Any]
    sample_fps: float
    complete: bool
    stopped: dict[str, Any] | None
    seconds: int
    viewers: list[Viewer]
    notes: list[str]
    classes: list[str]
    error: str | None
    status: int
    kind: Literal["video"]
    @property
    def ok(self) -> bool: ...
    @property
    def frames(self) -> list[dict[str, Any]]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def save_timeline(self, path: str | os.PathLike[str]) -> None: ...
    def rows(self) -> list[dict[str, Any]]: ...

Result = Union[Photo, Video]

class Analysis(Sequence[Result]):
    results: list[Result]
    classes: list[str]
    def __init__(self, results: list[Result], classes: list[str]) -> None: ...
    @property
    def photos(self) -> list[Photo]: ...
    @property
    def videos(self) -> list[Video]: ...
    @overload
    def __getitem__(self, i: int) -> Result: ...
    @overload
    def __getitem__(self, i: slice) -> list[Result]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Result]: ...
    @property
    def faces(self) -> list[tuple[Photo, Face]]: ...
    def to_dicts(self) -> list[dict[str, Any]]: ...
    def to_pandas(self) -> Any: ...

Photos = Any
"""A path (photo or video), folder, encoded bytes, PIL image or uint8 array (HxW, HxWx3), or a
list of them."""

Progress = Callable[[float, float | None, int, int], Any]
"""Called as a video goes: (seconds done, duration or None, frames sampled, viewers)."""

class Analyzer:
    classes: list[str]
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
    ) -> None: ...
    def analyze(
        self,
        photos: Photos,
        *,
        names: Sequence[str] | None = None,
        on_error: str = "raise",
        batch_size: int = 16,
        fps: float = 5.0,
        video_batch: int = 8,
        max_seconds: float = 7200.0,
        track_gap: float = 1.0,
        progress: Progress | None = None,
    ) -> Analysis: ...

def analyze(
    photos: Photos,
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
    progress: Progress | None = None,
) -> Analysis: ...

class Classifier:
    classes: list[str]
    meta: dict[str, Any]
    input_shape: tuple[int, int, int]
    def __init__(self, model: str | os.PathLike[str] | None = None) -> None: ...
    @property
    def runtime(self) -> str: ...
    def predict(self, x: Any) -> np.ndarray: ...
    def preprocess(self, crops: Any) -> np.ndarray: ...
    def predict_crops(self, crops: Any) -> np.ndarray: ...
