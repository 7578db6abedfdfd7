"""Plain-text corpora for language models: read as documents, then cut into token windows.

A corpus is a `.txt` / `.md` file or a folder of text files (`data.format: text`). It loads as a
table with one row per document (column `text`), so the usual split by fraction puts whole
documents in train, val or test. A single file is cut at blank lines into documents of a few
thousand characters, so that it can be split too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from megalith.data.features.text import TextOutputEncoder
from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import PAD
from megalith.errors import DataError

TEXT_SUFFIXES = frozenset({".txt", ".md", ".rst", ".py"})
"""Files a corpus folder is read from (compared lower-cased)."""
DOCUMENT_CHARS = 4000
"""A single corpus file is cut into documents of about this many characters."""


def read_corpus(path: Path) -> pd.DataFrame:
    """Documents of a text file or a folder of them: columns `text` and `file`.

    Raises:
        DataError: the path is missing, holds no text files, or a file is not UTF-8 text.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _is_text_file(p))
        if not files:
            suffixes = ", ".join(sorted(TEXT_SUFFIXES))
            raise DataError(f"{path}: no text files ({suffixes}) in this folder or below it.")
        rows = [(_read_text(file), str(file.relative_to(path))) for file in files]
    elif path.is_file():
        rows = [(chunk, path.name) for chunk in split_documents(_read_text(path))]
    else:
        raise DataError(f"{path}: no such file or folder; check data.source.")
    frame = pd.DataFrame(rows, columns=["text", "file"])
    frame = frame[frame["text"].str.strip() != ""].reset_index(drop=True)
    if frame.empty:
        raise DataError(f"{path}: the corpus holds no text.")
    return frame


def split_documents(text: str, size: int = DOCUMENT_CHARS) -> list[str]:
    """Cut text at blank lines into pieces of at least `size` characters (the last may be less)."""
    pieces, current, length = [], [], 0
    for paragraph in text.split("\n\n"):
        current.append(paragraph)
        length += len(paragraph) + 2
        if length >= size:
            pieces.append("\n\n".join(current))
            current, length = [], 0
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def language_model_windows(
    encoder: TextOutputEncoder, documents: Iterable[str], context: int
) -> TensorTable:
    """The documents' tokens, each ended by the end id, cut into windows of `context` tokens.

    Row i holds input tokens t[i*context : (i+1)*context] and, as its target, the same positions
    shifted by one: every token of the split is predicted exactly once. The last window is
    padded; padded targets are ignored by the loss.
    """
    name, end = encoder.config.name, encoder.end_id
    stream = np.fromiter(
        (token for ids in encoder.encode(list(documents)) for token in (*ids, end)),
        dtype=np.int64,
    )
    windows = max(0, -(-(len(stream) - 1) // context))  # ceil((n - 1) / context)
    padded = np.full(windows * context + 1, PAD, dtype=np.int64)
    padded[: len(stream)] = stream
    x = torch.from_numpy(padded[:-1].reshape(windows, context).copy())
    y = torch.from_numpy(padded[1:].reshape(windows, context).copy())
    return TensorTable(inputs={name: x}, targets={name: y}, rows=np.arange(windows))


def _is_text_file(path: Path) -> bool:
    return path.suffix.lower() in TEXT_SUFFIXES and not path.name.startswith(".")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte {error.start}); convert it to UTF-8 or remove it "
            "from the corpus."
        ) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror or error}).") from None


def python_stdlib_corpus() -> pd.DataFrame:
    """The source of this Python's standard-library modules (the top-level .py files), one row
    per file: a few MB of real, well-written code on every machine that runs Megalith."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))
    if not files:
        raise DataError(f"{root}: this Python ships no standard-library sources (.py files).")
    rows = [(_read_text(file), file.name) for file in files]
    return pd.DataFrame(rows, columns=["text", "file"])
