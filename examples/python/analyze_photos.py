# %% [markdown]
# # emolens from Python: faces and expressions in photos and reaction videos
#
# Notebook-style (each `# %%` is a cell; VS Code and Jupytext run them as cells), or run it
# whole: `python examples/python/analyze_photos.py [VIDEO...]`. Needs the `emolens` wheel
# (docs/python.md), Pillow for the PIL cell and pandas for the table.

# %%
from pathlib import Path

import numpy as np

import emolens

try:
    from PIL import Image
except ImportError:  # Pillow is optional: the cells that need it are skipped
    Image = None

photos = Path(__file__).resolve().parents[2] / "assets" / "photos"

# %% Every face in a folder of photos (the folder is searched as `emolens analyze` does).
result = emolens.analyze(photos)
print(result)
for photo in result:
    print(f"{Path(photo.source).name}: {photo.width}x{photo.height}, {len(photo.faces)} face(s)")
    for face in photo.faces:
        b = face.box
        top = max(face.probabilities, key=face.probabilities.get)
        print(
            f"  box {b.x:.0f},{b.y:.0f} {b.width:.0f}x{b.height:.0f}  {face.top_emotion}"
            f"  (model's top: {top} {face.probabilities[top]:.0%}, sharpness {face.quality.sharpness:.0f})"
        )
    for note in photo.notes:
        print(f"  note: {note}")

# %% One row per face, for pandas users.
try:
    df = result.to_pandas()
    print(df[["source", "face", "top_emotion", "confidence", "p_happy", "p_neutral"]])
except ImportError as e:
    print(e)

# %% Photos already in memory: bytes, PIL images, numpy arrays (HxW or HxWx3 uint8).
data = (photos / "astronaut.png").read_bytes()
from_bytes = emolens.analyze(data)
if Image is not None:
    image = Image.open(photos / "astronaut.png")
    from_array = emolens.analyze(np.asarray(image))
    # A PNG's pixels are the file's: the same faces and probabilities.
    assert from_array[0].faces == from_bytes[0].faces
    print("bytes and array agree:", from_array[0].faces[0].top_emotion)

# %% Bad input raises emolens.EmolensError with the CLI's message (or use on_error="keep").
try:
    emolens.analyze(b"not a photo")
except emolens.EmolensError as e:
    print("EmolensError:", e)
kept = emolens.analyze([b"not a photo", data], on_error="keep")
print([(p.source, p.status, p.error) for p in kept])

# %% The classifier alone, on face crops (the model's own preprocessing) or on a float batch.
clf = emolens.Classifier()  # the bundled model; Classifier("runs/x/best.emolens") for another
print(clf, clf.runtime)
face = from_bytes[0].faces[0]
x0, y0, side = (int(round(v)) for v in (face.crop.x, face.crop.y, face.crop.width))
if Image is not None:
    gray = np.asarray(Image.open(photos / "astronaut.png").convert("L"))
    crop = gray[y0 : y0 + side, x0 : x0 + side]
    probs = clf.predict_crops([crop])  # resized to the model's input, normalised as it says
    print(dict(zip(clf.classes, probs[0].round(3))))
    batch = clf.preprocess([crop, crop[:, ::-1]])  # float32 (N, C, H, W)
    print(batch.shape, clf.predict(batch).argmax(axis=1))

# %% Reaction videos: pass a video file (or a folder holding photos and videos). Each viewer is
# tracked and summed up per second; `video.to_dict()` is the CLI's JSON object for it.
import sys

if len(sys.argv) > 1:  # python analyze_photos.py viewer.mp4
    videos = emolens.analyze(sys.argv[1:], fps=5.0, progress=lambda t, d, n, v: None).videos
    for video in videos:
        print(video.source, video.info["width"], "x", video.info["height"], len(video.viewers), "viewers")
        for viewer in video.viewers:
            print(" viewer", viewer.viewer, "mostly", viewer.top_emotion, "valence", viewer.valence)
        timeline = emolens.Analysis([video], video.classes).to_pandas()  # a row per viewer per second
        print(timeline[["viewer", "second", "face_share", "valence", "top_emotion"]].head())
        video.save_timeline(video.source + ".timeline.png")  # the plot of `emolens analyze --timeline`
