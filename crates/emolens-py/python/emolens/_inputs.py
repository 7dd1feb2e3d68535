"""Turns the photos and crops Python users hold (paths, folders, bytes, PIL images, numpy uint8
arrays) into what the native module reads: `(source name, path or encoded bytes)` pairs.

Arrays and PIL images are handed over losslessly as PGM (HxW) or PPM (HxWx3) bytes, which
emolens decodes to exactly those pixels, so an array read from a PNG gives the results of the
PNG file itself. EXIF orientation is not applied to arrays or PIL images (emolens applies it
to files and bytes): use `PIL.ImageOps.exif_transpose` first where it matters.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

from . import _native


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "convert")


def _is_array(obj: Any) -> bool:
    return hasattr(obj, "__array_interface__") or hasattr(obj, "__array__")


def pnm_bytes(array: Any, name: str) -> bytes:
    """Lossless PGM/PPM encoding of a uint8 HxW, HxWx1, HxWx3 (or HxWx4, alpha dropped) array."""
    import numpy as np

    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise TypeError(
            f"{name}: an image array must be uint8 (0..255), got {a.dtype}; "
            "convert it with array.astype(numpy.uint8) after scaling"
        )
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim == 2:
        magic = b"P5"
    elif a.ndim == 3 and a.shape[2] == 3:
        magic = b"P6"
    else:
        raise TypeError(
            f"{name}: an image array must be HxW (grayscale) or HxWx3 (RGB), got shape {a.shape}"
        )
    h, w = a.shape[:2]
    return b"%s\n%d %d\n255\n" % (magic, w, h) + np.ascontiguousarray(a).tobytes()


def pil_bytes(image: Any, name: str) -> bytes:
    """A PIL image's pixels as PGM (mode L) or PPM (every other mode, converted to RGB)."""
    import numpy as np

    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode in ("1", "LA") else "RGB")
    return pnm_bytes(np.asarray(image), name)


def one(item: Any, index: int, kind: str) -> tuple[str, Any]:
    """One non-path item as `(default name, bytes)`; `kind` says what it is for messages."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"bytes[{index}]", bytes(item)
    if _is_pil(item):
        name = getattr(item, "filename", "") or f"image[{index}]"
        return name, pil_bytes(item, name)
    if _is_array(item):
        name = f"array[{index}]"
        return name, pnm_bytes(item, name)
    raise TypeError(
        f"item {index}: a {kind} must be a path, bytes, a PIL image or a uint8 numpy array, "
        f"got {type(item).__name__}"
    )


def as_list(items: Any) -> list[Any]:
    """A single photo (path, bytes, PIL image, 2-D/3-D array) or an iterable of them."""
    if isinstance(items, (str, os.PathLike, bytes, bytearray, memoryview)) or _is_pil(items):
        return [items]
    if _is_array(items):
        import numpy as np

        a = np.asarray(items)
        return [a] if a.ndim in (2, 3) else list(a)
    return list(items)


def photos(items: Any, names: Sequence[str] | None) -> list[tuple[str, Any, bool]]:
    """`(name, path or bytes, is_video)` for `emolens.analyze`: folders are expanded as
    `emolens analyze` expands them (recursive, sorted, photo and video extensions), and a path
    is a video when the CLI would take it as one (extension or content); names default to the
    path, or to `bytes[i]`, `array[i]`, `image[i]` (a PIL image opened from a file: its file
    name). Bytes, arrays and PIL images are photos."""
    listed = as_list(items)
    if names is not None and len(names) != len(listed):
        raise ValueError(f"names has {len(names)} entries for {len(listed)} inputs")
    paths = [os.fspath(p) for p in listed if isinstance(p, (str, os.PathLike))]
    expanded = iter(_native.collect_inputs(paths) if paths else [])
    out: list[tuple[str, Any, bool]] = []
    for i, item in enumerate(listed):
        if isinstance(item, (str, os.PathLike)):
            found = next(expanded)
            if names is not None and len(found) == 1 and os.fspath(found[0][0]) == os.fspath(item):
                out.append((names[i], os.fspath(found[0][0]), found[0][1]))
            else:
                out.extend((os.fspath(p), os.fspath(p), video) for p, video in found)
        else:
            name, data = one(item, i, "photo")
            out.append((names[i] if names is not None else name, data, False))
    return out


def crops(items: Iterable[Any] | Any) -> list[tuple[str, Any]]:
    """`(name, path or bytes)` for `Classifier.preprocess`: a uint8 array is a batch (N, H, W)
    or (N, H, W, 3); a list holds paths, bytes, PIL images or HxW / HxWx3 arrays."""
    if _is_array(items) and not _is_pil(items):
        import numpy as np

        a = np.asarray(items)
        if a.ndim not in (3, 4):
            raise TypeError(
                f"a batch of face crops must be (N, H, W) or (N, H, W, 3), got shape {a.shape}; "
                "pass a single crop as [crop]"
            )
        listed: list[Any] = list(a)
    elif isinstance(items, (str, os.PathLike, bytes, bytearray, memoryview)) or _is_pil(items):
        listed = [items]
    else:
        listed = list(items)
    out = []
    for i, item in enumerate(listed):
        if isinstance(item, (str, os.PathLike)):
            out.append((os.fspath(item), os.fspath(item)))
        else:
            out.append(one(item, i, "face crop"))
    return out
