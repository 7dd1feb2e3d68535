#!/usr/bin/env python3
"""Builds the benchmark photos: real FER2013 test faces pasted at known positions onto
textured backgrounds, in four photo sizes (512x512 .. 4000x3000), plus truth.json with every
face box. Output goes to a folder outside version control (FER2013 is never committed).

usage: make_photos.py FER2013_TEST_DIR OUT_DIR [PHOTOS_PER_SIZE]
"""
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

# (width, height, faces per photo, face side range in px)
SIZES = [
    (512, 512, 2, (110, 160)),
    (1280, 960, 4, (140, 240)),
    (1920, 1080, 6, (160, 280)),
    (4000, 3000, 8, (260, 520)),
]


def background(w, h, rng):
    # Smooth colour gradient plus blurred noise: a busy, non-flat scene.
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([
        90 + 60 * np.sin(x / w * 3 + rng.random() * 6),
        110 + 50 * np.cos(y / h * 2 + rng.random() * 6),
        100 + 40 * np.sin((x + y) / (w + h) * 4),
    ], axis=-1)
    noise = Image.fromarray(rng.integers(0, 255, (h // 4, w // 4, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR)
    noise = np.asarray(noise.filter(ImageFilter.GaussianBlur(2)), dtype=np.float32)
    return Image.fromarray(np.clip(base * 0.7 + noise * 0.3, 0, 255).astype(np.uint8))


def main():
    fer_test, out = Path(sys.argv[1]), Path(sys.argv[2])
    per_size = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    faces = sorted(p for p in fer_test.glob("*/*.jpg"))
    rng = np.random.default_rng(7)
    random.seed(7)
    random.shuffle(faces)
    k = 0
    truth = {}
    for (w, h, n, (lo, hi)) in SIZES:
        folder = out / f"{w}x{h}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_size):
            img = background(w, h, rng)
            boxes = []
            cols = int(np.ceil(np.sqrt(n * w / h)))
            rows = int(np.ceil(n / cols))
            cw, ch = w // cols, h // rows
            for j in range(n):
                side = int(rng.integers(lo, hi + 1))
                side = min(side, cw - 8, ch - 8)
                c, r = j % cols, j // cols
                x = c * cw + int(rng.integers(4, max(5, cw - side - 4)))
                y = r * ch + int(rng.integers(4, max(5, ch - side - 4)))
                face = Image.open(faces[k % len(faces)]).convert("RGB").resize((side, side), Image.BILINEAR)
                k += 1
                img.paste(face, (x, y))
                boxes.append([x, y, side, side])
            name = folder / f"photo{i:02d}.jpg"
            img.save(name, quality=92)
            truth[str(name.resolve())] = boxes
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    print(f"{len(truth)} photos, {sum(len(b) for b in truth.values())} faces -> {out}")


if __name__ == "__main__":
    main()
