"""Type stubs of the Rust extension module `emolens._native` (crates/emolens-py/src)."""

import os
from typing import Any, Callable

__version__: str

class EmolensError(Exception):
    """An emolens failure, with the message the `emolens` CLI prints for it."""

def collect_inputs(paths: list[str | os.PathLike[str]]) -> list[list[tuple[str, bool]]]: ...
def write_timeline(result_json: str, classes: list[str], path: str) -> None: ...

class Analyzer:
    def __init__(
        self,
        model: str | None = None,
        *,
        assume_crop: bool = False,
        min_face_px: int | None = None,
        margin: float | None = None,
        min_confidence: float | None = None,
        min_sharpness: float | None = None,
        min_detector_score: float | None = None,
        detect_max_side: int | None = None,
    ) -> None: ...
    @property
    def classes(self) -> list[str]: ...
    def analyze(
        self, items: list[tuple[str, Any]], batch_size: int = 16, release_gil: bool = True
    ) -> list[tuple[str, str | None, str | None, int]]: ...
    def analyze_video(
        self,
        path: str,
        fps: float = 5.0,
        video_batch: int = 8,
        max_seconds: float = 7200.0,
        track_gap: float = 1.0,
        progress: Callable[[float, float | None, int, int], Any] | None = None,
    ) -> tuple[str, str | None, str | None, int]: ...

class Classifier:
    def __init__(self, model: str | None = None) -> None: ...
    @property
    def classes(self) -> list[str]: ...
    @property
    def meta_json(self) -> str: ...
    @property
    def input_shape(self) -> tuple[int, int, int]: ...
    @property
    def runtime(self) -> str: ...
    def predict(self, inputs: bytes, n: int) -> bytes: ...
    def preprocess(self, items: list[tuple[str, Any]]) -> bytes: ...
