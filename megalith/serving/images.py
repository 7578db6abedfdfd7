"""Image fields of a request: base64 bytes decoded safely, or paths under an allowed folder;
audio fields through megalith.serving.audio_uploads."""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError, MegalithError
from megalith.paths import check_readable, resolved
from megalith.serving.audio_uploads import AudioUploads


class ImageDecoder:
    """Turns requests' records into the DataFrame the predictor reads: `decode` per request
    (images checked and decoded), `frame` once per batch.

    Args:
        preprocessor: the run's; its image inputs give the columns and their `max_pixels`.
        allow_paths: image fields may name a file under this folder (resolved, so neither
            `..` nor a symlink leads out of it); None: base64 only.
    """

    def __init__(self, preprocessor: Preprocessor, allow_paths: Path | None) -> None:
        configs: list[Any] = [encoder.config for encoder in preprocessor.inputs]
        self.limits = {
            config.name: int(config.max_pixels) for config in configs if config.type == "image"
        }
        self.allow_paths = resolved(allow_paths) if allow_paths is not None else None
        self.audio = AudioUploads(preprocessor)
        """The audio fields (base64 sound files), checked in `decode` too."""

    def decode(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records with each image field as a uint8 array (H, W[, C]) or an allowed path.

        Raises:
            DataError: an image field is neither an allowed path nor base64 of a readable image
                within the pixel limit, or an audio field not base64 of a sound file (naming
                the row and the field).
        """
        records = self.audio.decode(records)
        if not self.limits:
            return records
        return [
            record
            | {
                column: self._image(record[column], column, row, limit)
                for column, limit in self.limits.items()
            }
            for row, record in enumerate(records)
        ]

    def frame(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Decoded records (one batch of them) -> a DataFrame, one column per field."""
        images = set(self.limits)
        frame = pd.DataFrame.from_records(
            [{k: v for k, v in record.items() if k not in images} for record in records]
            if images
            else records
        )
        for column in self.limits:  # a list of arrays: pandas must not stack them into 3-D
            frame[column] = [record[column] for record in records]
        return frame

    def _image(self, value: str, column: str, row: int, limit: int) -> Any:
        where = f"rows.{row}.{column}"
        path = self._allowed_path(value)
        if path is not None:
            return str(path)
        try:  # line breaks, as the base64 tool writes them, are not part of the data
            data = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            hint = (
                " or a path under the allowed folder"
                if self.allow_paths
                else " (a file path needs the server started with --allow-paths DIR)"
            )
            raise DataError(f"{where}: expected base64-encoded image bytes{hint}") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))  # reads the header only
                if limit and image.width * image.height > limit:
                    raise DataError(
                        f"{where}: the image has {image.width}x{image.height} pixels, more "
                        f"than this model accepts ({limit})"
                    )
                image.load()
        except UnidentifiedImageError:
            raise DataError(f"{where}: the bytes are not an image Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise DataError(f"{where}: not a readable image ({error})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(f"{where}: the image is too large to decode safely") from None
        usable = image if image.mode in ("L", "RGB", "RGBA") else image.convert("RGB")
        return np.asarray(usable, dtype=np.uint8)

    def _allowed_path(self, value: str) -> Path | None:
        """The file `value` names under the allowed folder (symlinks followed), or None: for
        a path outside it, missing or not, the same None, so an answer never tells whether a
        file outside exists; a pipe, a device or a symlink loop inside is None too."""
        if self.allow_paths is None or len(value) > 4096 or "\x00" in value:
            return None
        path = resolved(self.allow_paths / value)
        if not path.is_relative_to(self.allow_paths):
            return None
        try:
            return check_readable(path, "image", kind="file")
        except MegalithError:
            return None
