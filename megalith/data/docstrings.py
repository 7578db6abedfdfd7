"""A real English text-classification table: standard-library docstrings labelled by module.

Every machine with Python has the standard library's source, so this dataset needs no download
and no cache. Each row is the first paragraph of the docstring of a function, method or class
(`text`), and the label is the top-level module or package it comes from (`module`: email,
asyncio, xml, ...). The files are parsed with `ast`, never imported, so nothing runs.

The rows depend on the Python version: the same interpreter always gives the same table.
"""

from __future__ import annotations

import ast
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from megalith.errors import DataError

CLASSES = 16
"""Labels kept: those with the most rows."""
MIN_CHARS = 20
"""Shorter descriptions ('Return self.') say too little to classify."""
MAX_CHARS = 300
"""Longer first paragraphs are cut at the last word boundary before this."""
SEED = 0
"""Seed of the final shuffle that mixes the classes."""
_SKIPPED_FOLDERS = {
    "site-packages",
    "test",
    "tests",
    "idlelib",
    "lib2to3",
    "turtledemo",
    "__pycache__",
}
_DOCUMENTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BLANK_LINE = re.compile(r"\n\s*\n")


def docstrings_table(stdlib: Path | None = None, skip_largest: int = 0) -> pd.DataFrame:
    """Docstring first paragraphs (`text`) of the 16 largest stdlib modules (`module`), shuffled.

    Texts found under two modules are dropped; repeats within a module are kept once.

    Args:
        stdlib: the folder to read; by default the running Python's standard library.
        skip_largest: keep the 16 modules that follow this many largest ones instead (a second,
            disjoint task from the same folder).

    Raises:
        DataError: no documented .py files there (some embedded Pythons ship only .pyc files).
    """
    stdlib = stdlib or Path(sysconfig.get_paths()["stdlib"])
    frame = pd.DataFrame(_all_rows(stdlib), columns=["text", "module"])
    if frame.empty:
        raise DataError(
            f"builtin:docstrings: no documented .py files under {stdlib} (some Pythons ship "
            "their standard library as .pyc files only): use another Python or another dataset."
        )
    frame = frame.drop_duplicates()
    frame = frame[~frame["text"].duplicated(keep=False)]  # left: texts under two modules
    largest = (
        frame["module"].value_counts().sort_index().sort_values(ascending=False, kind="stable")
    )
    frame = frame[frame["module"].isin(largest.index[skip_largest : skip_largest + CLASSES])]
    frame = frame.sort_values(["module", "text"], kind="stable", ignore_index=True)
    order = np.random.default_rng(SEED).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def _all_rows(stdlib: Path) -> Iterator[tuple[str, str]]:
    """(text, module) for every usable docstring, in sorted file order."""
    for path in _source_files(stdlib):
        module = path.relative_to(stdlib).parts[0].removesuffix(".py")
        for text in _descriptions(path):
            yield text, module


def _source_files(folder: Path) -> Iterator[Path]:
    """The .py files under `folder`, sorted, outside the skipped folders."""
    if not folder.is_dir():  # e.g. a standard library shipped as a zip file
        return
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name not in _SKIPPED_FOLDERS:
            yield from _source_files(entry)
        elif entry.suffix == ".py" and entry.is_file():
            yield entry


def _descriptions(path: Path) -> Iterator[str]:
    """The first paragraphs of the function, method and class docstrings in one file."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError):  # ValueError: null bytes in the source
        return
    for node in _statements(tree):
        if isinstance(node, _DOCUMENTED):
            docstring = ast.get_docstring(node)
            text = _first_paragraph(docstring) if docstring else ""
            if len(text) >= MIN_CHARS:
                yield text


def _statements(node: ast.AST) -> Iterator[ast.AST]:
    """Every statement under `node`, at any depth.

    Unlike `ast.walk` it skips expressions: they hold no docstrings and are most of the nodes.
    """
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
            yield child
            yield from _statements(child)


def _first_paragraph(docstring: str) -> str:
    """Up to the first blank line, whitespace collapsed, at most MAX_CHARS at a word boundary."""
    text = " ".join(_BLANK_LINE.split(docstring.strip(), maxsplit=1)[0].split())
    if len(text) > MAX_CHARS:
        space = text.rfind(" ", 0, MAX_CHARS + 1)  # a word ending at MAX_CHARS stays whole
        text = text[: space if space > 0 else MAX_CHARS]
    return text
