"""emolens for Python: find every face in photos and reaction videos and classify its expression
(angry, disgust, fear, happy, neutral, sad, surprise) with emolens' Rust pipeline and bundled
model; in videos, each viewer is tracked and summed up per second.

    import emolens
    result = emolens.analyze(["team.jpg", "crowd.png"])   # paths, folders, bytes, PIL, numpy
    for photo in result:
        for face in photo.faces:
            print(photo.source, face.box, face.top_emotion, face.probabilities)
    df = result.to_pandas()                                 # one row per face
    video = emolens.analyze("viewer.mp4")[0]                # a reaction video: emolens.Video
    video.save_timeline("viewer.png")                       # per viewer, per second

    clf = emolens.Classifier()                              # the bundled model, or a .emolens path
    probs = clf.predict_crops(["face1.png", "face2.png"])   # face crops, the model's preprocessing
    probs = clf.predict(batch)                              # (N, C, H, W) float32, preprocessed

`analyze` gives the same results as `emolens analyze --json` (the same library call; each
photo's and video's `to_dict()` is the CLI's JSON object) and `Classifier` the same as `emolens predict`.
Failures raise `EmolensError` with the CLI's message. The GIL is released while Rust works.
"""

import os as _os

# As the CLI does (crates/emolens/src/main.rs): oneDNN's OpenMP threads sleep between parallel
# regions instead of spinning, unless the user chose a policy. OpenMP reads it when it loads,
# which is when the native module below is imported.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from ._native import EmolensError, __version__  # noqa: E402
from ._analyze import Analysis, Analyzer, Box, Face, Photo, Quality, analyze  # noqa: E402
from ._classifier import Classifier  # noqa: E402
from ._video import Video, Viewer, ViewerSecond  # noqa: E402

__all__ = [
    "Analysis",
    "Analyzer",
    "Box",
    "Classifier",
    "EmolensError",
    "Face",
    "Photo",
    "Quality",
    "Video",
    "Viewer",
    "ViewerSecond",
    "analyze",
    "__version__",
]
