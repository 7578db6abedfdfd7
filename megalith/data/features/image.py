"""Image features: a column of image file paths (or in-memory arrays for built-in datasets)."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from megalith.configbase import ConfigModel
from megalith.data.arrays import to_tensor
from megalith.data.features.image_augment import AugmentPreset, ImageAugment
from megalith.data.rows import describe_row, describe_value
from megalith.data.specs import InputSpec
from megalith.errors import DataError

if TYPE_CHECKING:
    import torch


class ImageInput(ConfigModel):
    """An image input: paths relative to the table's folder, decoded and resized once."""

    name: str
    """Column name in the table."""
    type: Literal["image"] = "image"
    size: tuple[int, int] | None = None
    """(height, width) every image is resized to, once, when the data is encoded; by default
    the size of the first training image (shrunk to max_side)."""
    max_side: int | None = Field(None, gt=0)
    """Without size: shrink the first training image's size, keeping its aspect ratio, so that
    its longer side is at most this many pixels (large photos are downsampled once)."""
    channels: Literal[1, 3] | None = None
    """1 for greyscale, 3 for RGB; by default taken from the first training image."""
    max_pixels: int = Field(50_000_000, gt=0)
    """Refuse images with more pixels than this (protects against decompression bombs)."""
    augment: ImageAugment | AugmentPreset | None = None
    """Train-time augmentation of whole batches (kornia): settings, or a preset (shapes,
    photos, none); never applied when evaluating, predicting or serving."""


def fitted_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(height, width) scaled down, aspect ratio kept, so the longer side is <= max_side."""
    longest = max(height, width)
    if max_side is None or longest <= max_side:
        return height, width
    scale = max_side / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_STATS_SAMPLE = 2048
"""Images that estimate the channel mean / std: all up to this many, else evenly spaced."""
_STATS_CHUNK = 256


class ImageInputEncoder:
    """Decodes, converts and resizes images once: uint8 (B, C, H, W), raw pixels."""

    def __init__(self, config: ImageInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.channels = 0
        self.size = (0, 0)
        """(height, width)"""
        self.mean: tuple[float, ...] = ()
        self.std: tuple[float, ...] = ()
        if state is not None:
            self.channels = int(state["channels"])
            height, width = state["size"]
            self.size = (int(height), int(width))
            self.mean = tuple(float(m) for m in state["mean"])
            self.std = tuple(float(s) for s in state["std"])

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Take channels / size from the first train image unless configured; measure mean / std."""
        if len(values) == 0:
            raise DataError(f"{where}: image column '{self.config.name}' has no train rows.")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            first = self._open(values.index[0], values.iloc[0], where, base_dir)
        with first:
            grey = first.mode in _GREY_MODES
            self.channels = self.config.channels or (1 if grey else 3)
            self.size = self.config.size or fitted_size(
                first.height, first.width, self.config.max_side
            )
        self.mean, self.std = self._channel_stats(values, where, base_dir)

    def _channel_stats(
        self, values: pd.Series, where: str, base_dir: Path | None
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        count = min(len(values), _STATS_SAMPLE)
        positions = np.unique(np.linspace(0, len(values) - 1, count).round().astype(np.int64))
        total = np.zeros(self.channels)
        squares = np.zeros(self.channels)
        for start in range(0, len(positions), _STATS_CHUNK):
            chunk = values.iloc[positions[start : start + _STATS_CHUNK]]
            pixels = self.encode(chunk, where=where, base_dir=base_dir).astype(np.float64) / 255
            total += pixels.sum(axis=(0, 2, 3))
            squares += (pixels**2).sum(axis=(0, 2, 3))
        n = len(positions) * self.size[0] * self.size[1]
        mean = total / n
        std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
        std[std < 1e-6] = 1.0  # constant channel: dividing by 1 keeps the model finite
        return tuple(mean.tolist()), tuple(std.tolist())

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return uint8 (B, C, H, W); images are decoded in threads (Pillow releases the GIL)."""
        if not self.channels:
            raise RuntimeError(f"image input '{self.config.name}' used before fit")
        height, width = self.size
        pixels = np.empty((len(values), height, width, self.channels), dtype=np.uint8)
        labels, cells = values.index.tolist(), values.tolist()

        def decode_into(position: int) -> None:
            pixels[position] = self._decode(labels[position], cells[position], where, base_dir)

        pool = ThreadPoolExecutor(thread_name_prefix="megalith-image")
        try:
            # PIL warns about huge images from Image.open; as an error it is reported per row below
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                for _ in pool.map(decode_into, range(len(values))):
                    pass
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))  # (B, H, W, C) -> (B, C, H, W)

    def _decode(self, label: Any, cell: Any, where: str, base_dir: Path | None) -> np.ndarray:
        """One cell -> (H, W, C) uint8, converted to the fitted mode and resized bilinearly."""
        with self._open(label, cell, where, base_dir) as image:
            try:
                image.load()
                converted = image.convert("L" if self.channels == 1 else "RGB")
            except (OSError, SyntaxError, ValueError) as error:
                raise self._error(
                    label, cell, where, f"is corrupt or truncated ({error})"
                ) from None
        height, width = self.size
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(converted, dtype=np.uint8)
        return array[:, :, None] if array.ndim == 2 else array

    def _open(self, label: Any, cell: Any, where: str, base_dir: Path | None) -> Image.Image:
        """Open a cell (path or array), reading only the header of a file, and check its size."""
        if isinstance(cell, np.ndarray):
            image = self._from_array(label, cell, where)
        elif isinstance(cell, (str, Path)):
            image = self._open_file(label, cell, where, base_dir)
        else:
            raise DataError(
                f"{where}: column '{self.config.name}', {describe_row(label)}: expected an image "
                f"path, got {describe_value(cell)}; fill in the path or drop the row."
            )
        if image.width * image.height > self.config.max_pixels:
            image.close()
            raise self._error(
                label,
                cell,
                where,
                f"has {image.width}x{image.height} pixels, more than max_pixels "
                f"({self.config.max_pixels}); shrink the image or raise max_pixels",
            )
        return image

    def _open_file(
        self, label: Any, cell: str | Path, where: str, base_dir: Path | None
    ) -> Image.Image:
        path = Path(cell)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise self._error(label, path, where, "does not exist; fix the path or add the file")
        try:
            return Image.open(path)
        except UnidentifiedImageError:
            raise self._error(label, path, where, "is not an image Pillow can read") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise self._error(
                label, path, where, f"is too large to decode safely ({error})"
            ) from None
        except OSError as error:
            raise self._error(label, path, where, f"cannot be read ({error})") from None

    def _from_array(self, label: Any, array: np.ndarray, where: str) -> Image.Image:
        channels_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))
        if array.dtype != np.uint8 or not channels_ok:
            raise DataError(
                f"{where}: column '{self.config.name}', {describe_row(label)}: an in-memory image "
                f"must be uint8 (H, W) or (H, W, 1|3|4), got {array.dtype} {array.shape}."
            )
        return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)

    def _error(self, label: Any, cell: Any, where: str, problem: str) -> DataError:
        what = f"image {str(cell)!r}" if isinstance(cell, (str, Path)) else "the in-memory image"
        return DataError(
            f"{where}: column '{self.config.name}', {describe_row(label)}: {what} {problem}."
        )

    def state(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "size": list(self.size),
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def spec(self) -> InputSpec:
        height, width = self.size
        return InputSpec(
            name=self.config.name,
            type="image",
            shape=(self.channels, height, width),
            mean=self.mean,
            std=self.std,
        )
