"""The inference bundle on disk: what `megalith export` writes and the runtime reads.

    BUNDLE/
      model.onnx          the network: encoded inputs -> raw outputs (logits, standardised values)
      preprocessor.json   the run's fitted preprocessing (the same file as in the run directory)
      bundle.json         inputs and outputs by name, type, dtype and shape; classes, threshold
                          and units of each output; the versions that wrote it; what was verified

A seq2seq bundle holds two graphs instead of model.onnx, named in bundle.json's `graphs`
(role -> {"file": ...}): encoder.onnx and decoder.onnx (see megalith.runtime.decoding), and
how it decodes (`decoding`). Bundles without `graphs` are read as before.

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
from megalith.structured import parse_json

FORMAT = "megalith.bundle"
VERSION = 1
MODEL_FILE = "model.onnx"
PREPROCESSOR_FILE = "preprocessor.json"
DESCRIPTION_FILE = "bundle.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"

INPUT_DTYPES = {
    "number": "float32",
    "binary": "float32",
    "category": "int64",
    "text": "int64",
    "image": "uint8",
    "sequence": "float32",
    "audio": "float32",
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

    def graph(self, file: str) -> Path:
        return self.path / file


def graph_files(description: dict[str, Any], where: str = DESCRIPTION_FILE) -> dict[str, str]:
    """Each graph's file by role: {"model": "model.onnx"}, or a seq2seq bundle's encoder and
    decoder (plain file names in the bundle's folder)."""
    graphs = description.get("graphs")
    if graphs is None:
        return {"model": MODEL_FILE}
    files = {}
    if isinstance(graphs, dict):
        for role, entry in graphs.items():
            file = entry.get("file") if isinstance(entry, dict) else None
            if isinstance(file, str) and file and Path(file).name == file:
                files[str(role)] = file
    if not files or len(files) != len(graphs):
        raise RunError(f"{where}: `graphs` must give each graph's file name, got {graphs!r}")
    return files


def read_description(files: BundleFiles) -> dict[str, Any]:
    """bundle.json, checked for its format and version.

    Raises:
        RunError: the folder is not a bundle, a file is missing, or the bundle is from a newer
            Megalith.
    """
    if not files.path.is_dir():
        raise RunError(f"{files.path} is not a folder; give the folder `megalith export` wrote")
    for needed in (files.description, files.preprocessor):
        if os.path.lexists(needed):  # a pipe would block the read, a loop never resolves
            check_readable(needed, "bundle file", kind="file", error=RunError)
        if not needed.is_file():
            raise _incomplete(files, needed.name)
    try:
        text = files.description.read_text(encoding="utf-8")
        data = parse_json(text, str(files.description), RunError)
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
    for file in graph_files(data, str(files.description)).values():
        if not files.graph(file).is_file():
            raise _incomplete(files, file)
    return data


def _incomplete(files: BundleFiles, missing: str) -> RunError:
    return RunError(
        f"{files.path} is not a complete inference bundle: {missing} is missing; "
        "export the run again with `megalith export RUN --output DIR`"
    )
