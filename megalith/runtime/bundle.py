"""The inference bundle on disk: what `megalith export` writes and the runtime reads.

    BUNDLE/
      model.onnx          the network: encoded inputs -> raw outputs (logits, standardised values)
      preprocessor.json   the run's fitted preprocessing (the same file as in the run directory)
      bundle.json         inputs and outputs by name, type, dtype and shape; classes, threshold
                          and units of each output; the versions that wrote it; what was verified

No torch here: both the exporter and the torch-free runtime read this module.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from megalith.errors import RunError
from megalith.paths import check_readable

FORMAT = "megalith.bundle"
VERSION = 1
MODEL_FILE = "model.onnx"
PREPROCESSOR_FILE = "preprocessor.json"
DESCRIPTION_FILE = "bundle.json"

INPUT_DTYPES = {
    "number": "float32",
    "binary": "float32",
    "category": "int64",
    "text": "int64",
    "image": "uint8",
    "sequence": "float32",
}
"""The dtype of each encoded input type (megalith.data.specs)."""


@dataclass(frozen=True)
class BundleFiles:
    """The paths of one bundle's files."""

    path: Path

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def preprocessor(self) -> Path:
        return self.path / PREPROCESSOR_FILE

    @property
    def description(self) -> Path:
        return self.path / DESCRIPTION_FILE


def read_description(files: BundleFiles) -> dict[str, Any]:
    """bundle.json, checked for its format and version.

    Raises:
        RunError: the folder is not a bundle, a file is missing, or the bundle is from a newer
            Megalith.
    """
    if not files.path.is_dir():
        raise RunError(f"{files.path} is not a folder; give the folder `megalith export` wrote")
    for needed in (files.description, files.model, files.preprocessor):
        if os.path.lexists(needed):  # a pipe would block the read, a loop never resolves
            check_readable(needed, "bundle file", kind="file", error=RunError)
        if not needed.is_file():
            raise RunError(
                f"{files.path} is not a complete inference bundle: {needed.name} is missing; "
                "export the run again with `megalith export RUN --output DIR`"
            )
    try:
        data = json.loads(files.description.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(
            f"{files.description}: cannot read the bundle description ({error})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RunError(f"{files.description} is not a Megalith bundle description")
    if data.get("version") != VERSION:
        raise RunError(
            f"{files.description}: bundle version {data.get('version')!r} is not supported "
            f"(this Megalith reads version {VERSION}); export the run again"
        )
    return data
