"""``image_folder``: images in one sub-folder per class (torchvision's ImageFolder layout), read with pillow.

::

    root/cat/001.png
    root/cat/kitten/002.jpg     (nested folders belong to their top-level class)
    root/dog/003.png

Class indices follow the sorted folder names. pillow is optional and imported only here, at load time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.base import DataError, Splits, resolve_path, splits_from_arrays
from nas.data.preprocess import preprocessing
from nas.data.registry import register_dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

# channels -> pillow mode
PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


@register_dataset("image_folder")
def load_image_folder(
    *,
    seed: int,
    data_dir: str | os.PathLike[str] | None,
    val_fraction: float,
    test_fraction: float,
    path: str | os.PathLike[str] | None = None,
    image_size: int | Sequence[int] = 32,
    channels: int = 3,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> Splits:
    """Images from ``path`` (or ``data_dir``), one sub-folder per class, input (channels, H, W), pixels in [0, 1].

    ``image_size`` is the side in pixels, or ``(height, width)``; every image is resized to it (bilinear).
    ``channels`` is 1 (grey), 3 (RGB) or 4 (RGBA). Files are matched by ``extensions`` (case-insensitive).
    No official split: stratified train/val/test by ``seed``.
    """
    root = resolve_path("image_folder", path, data_dir, "a folder with one sub-folder per class")
    if channels not in PIL_MODES:
        raise DataError(f"dataset 'image_folder': channels={channels} is not supported; pass one of "
                        f"{', '.join(map(str, PIL_MODES))}.")
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if min(height, width) < 1:
        raise DataError(f"dataset 'image_folder': image_size={image_size!r} must be a positive side in pixels or "
                        "(height, width), e.g. 32 or (32, 48).")
    exts = (extensions,) if isinstance(extensions, str) else tuple(extensions)
    files = _class_files(root, tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in exts))
    image_module = _pillow()
    x = np.stack([_read(image_module, f, PIL_MODES[channels], (width, height)) for _, f in files])
    x = x.reshape(len(files), height, width, -1).transpose(0, 3, 1, 2)
    class_names = sorted({c for c, _ in files})
    y = np.array([class_names.index(c) for c, _ in files], dtype=np.int64)
    return splits_from_arrays(
        x, y, name="image_folder", seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
        num_classes=len(class_names),
        info={"source": str(root), "class_names": class_names, "normalization": "pixel / 255 -> [0, 1]",
              "preprocessing": preprocessing(divisor=255.0),
              "image_size": [height, width], "channels": channels, "total_samples": len(files)},
    )


def _class_files(root: Path, extensions: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``(class name, file)`` for every image under ``root``, sorted by class then path."""
    if not root.is_dir():
        raise DataError(f"dataset 'image_folder': {root} is not a folder. Pass path= (or data_dir=) pointing at a "
                        "folder with one sub-folder per class.")
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"dataset 'image_folder': {root} has {len(classes)} class sub-folder(s); a classifier needs "
                        "at least 2. Put each class's images in its own sub-folder, e.g. root/cat/, root/dog/.")
    files = []
    for folder in classes:
        found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
        if not found:
            raise DataError(f"dataset 'image_folder': class folder {folder} holds no image file "
                            f"({', '.join(extensions)}). Add images or remove the folder.")
        files += [(folder.name, p) for p in found]
    return files


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as err:
        raise DataError(f"dataset 'image_folder' needs pillow, which is not installed ({err}). Install it with "
                        "pip install 'nas[vision]' (or: pip install pillow).") from err
    return Image


def _read(image_module: Any, file: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image as float32 (H, W) or (H, W, C) in [0, 1]; ``size`` is (width, height) as pillow takes it."""
    try:
        with image_module.open(file) as img:
            img = img.convert(mode)
            if img.size != size:
                img = img.resize(size, image_module.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise DataError(f"dataset 'image_folder': cannot read image {file} ({err}). Remove or replace the file.") \
            from err
