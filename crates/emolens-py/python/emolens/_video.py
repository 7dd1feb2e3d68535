"""Reaction videos in `emolens.analyze`: `Video` (one video's viewers and their per-second
timelines, as `emolens analyze VIDEO --json` gives them; each comes from the native module as
the CLI's JSON line) and its table, one row per viewer per second like `emolens analyze --csv`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from . import _native


@dataclass(frozen=True)
class ViewerSecond:
    """One second of one viewer: frames sampled, frames with the viewer's face and their share,
    faces classified (and how many of them uncertain), mean probabilities (class -> p; empty
    without a classified face), valence (P(positive) - P(negative)) and the top emotion."""

    second: int
    frames: int
    frames_with_face: int
    face_share: float
    classified_faces: int
    uncertain_faces: int
    probabilities: dict[str, float]
    valence: float | None
    top_emotion: str | None

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "ViewerSecond":
        return ViewerSecond(
            second=d["second"],
            frames=d["frames"],
            frames_with_face=d["frames_with_face"],
            face_share=d["face_share"],
            classified_faces=d["classified_faces"],
            uncertain_faces=d["uncertain_faces"],
            probabilities={p["emotion"]: p["probability"] for p in d["probabilities"]},
            valence=d["valence"],
            top_emotion=d["top_emotion"],
        )


@dataclass(frozen=True)
class Viewer:
    """One tracked viewer: first and last second seen, frames with their face, mean
    probabilities, valence and top emotion over the video, and `seconds`, their timeline."""

    viewer: int
    first_s: float
    last_s: float
    frames_with_face: int
    mean_probabilities: dict[str, float]
    valence: float | None
    top_emotion: str | None
    seconds: list[ViewerSecond]

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Viewer":
        return Viewer(
            viewer=d["viewer"],
            first_s=d["first_s"],
            last_s=d["last_s"],
            frames_with_face=d["frames_with_face"],
            mean_probabilities={p["emotion"]: p["probability"] for p in d["mean_probabilities"]},
            valence=d["valence"],
            top_emotion=d["top_emotion"],
            seconds=[ViewerSecond.from_dict(s) for s in d["seconds"]],
        )


@dataclass(frozen=True)
class Video:
    """One reaction video's result: `viewers` with their per-second timelines, `info` (size,
    codec, duration, rotation...), `complete` (False for a partial result: `stopped` says where
    and why), `notes`; or (with `on_error="keep"`) its `error` and the HTTP `status` the server
    would answer. `to_dict()` is the CLI's `--json` object, per-frame detections included."""

    source: str
    info: dict[str, Any]
    sample_fps: float
    complete: bool
    stopped: dict[str, Any] | None
    seconds: int
    viewers: list[Viewer]
    notes: list[str]
    classes: list[str]
    error: str | None = None
    status: int = 200
    _raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    kind = "video"

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def frames(self) -> list[dict[str, Any]]:
        """Every sampled frame: `index`, `time_s` and its `faces` (each with its `viewer`)."""
        return list(self._raw.get("frames", []))

    def to_dict(self) -> dict[str, Any]:
        """The object `emolens analyze --json` writes for this video."""
        if self.error is not None:
            return {"source": self.source, "kind": "video", "error": self.error, "status": self.status}
        return json.loads(json.dumps(self._raw))

    def save_timeline(self, path: str | os.PathLike[str]) -> None:
        """Draws the emotion timeline (one line per emotion, per viewer) to `path`: PNG, or SVG
        for a `.svg` name; the plot of `emolens analyze --timeline`."""
        if self.error is not None:
            raise _native.EmolensError(f"{self.source}: no timeline: {self.error}")
        _native.write_timeline(json.dumps(self._raw), self.classes, os.fspath(path))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per viewer per second, the columns of `emolens analyze --csv` for videos
        (a video without viewers, or that failed, gets one row)."""
        tail = {
            "complete": self.complete if self.error is None else None,
            "stopped_at_s": self.stopped["at_s"] if self.stopped else None,
            "notes": "; ".join(self.notes),
            "error": self.error or "",
        }
        if not self.viewers:
            return [{"source": self.source, **tail}]
        out = []
        for v in self.viewers:
            for s in v.seconds:
                row: dict[str, Any] = {
                    "source": self.source,
                    "viewer": v.viewer,
                    "second": s.second,
                    "frames": s.frames,
                    "frames_with_face": s.frames_with_face,
                    "face_share": s.face_share,
                    "classified_faces": s.classified_faces,
                    "uncertain_faces": s.uncertain_faces,
                    "top_emotion": s.top_emotion,
                    "valence": s.valence,
                }
                for c in self.classes:
                    row[f"p_{c}"] = s.probabilities.get(c, float("nan"))
                out.append({**row, **tail})
        return out

    @staticmethod
    def columns(classes: list[str]) -> list[str]:
        return (
            ["source", "viewer", "second", "frames", "frames_with_face", "face_share"]
            + ["classified_faces", "uncertain_faces", "top_emotion", "valence"]
            + [f"p_{c}" for c in classes]
            + ["complete", "stopped_at_s", "notes", "error"]
        )

    @staticmethod
    def from_json(text: str, classes: list[str], source: str | None = None) -> "Video":
        d = json.loads(text)
        if source is not None:
            d["source"] = source
        return Video(
            source=d["source"],
            info=d["info"],
            sample_fps=d["sample_fps"],
            complete=d["complete"],
            stopped=d["stopped"],
            seconds=d["seconds"],
            viewers=[Viewer.from_dict(v) for v in d["viewers"]],
            notes=list(d["notes"]),
            classes=classes,
            _raw=d,
        )

    @staticmethod
    def failed(source: str, error: str, status: int, classes: list[str]) -> "Video":
        return Video(source, {}, 0.0, False, None, 0, [], [], classes, error=error, status=status)
