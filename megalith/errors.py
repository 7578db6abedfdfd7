"""Errors meant for people: each says what is wrong, where, and what to do.

The CLI prints any `MegalithError` as one or two lines and exits with `exit_code`,
without a traceback unless `--debug` is given.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class MegalithError(Exception):
    """Base class of every error Megalith reports to a user."""

    exit_code = 2


class ConfigError(MegalithError):
    """The config (file, overrides or Python structure) is invalid."""


class DataError(MegalithError):
    """The data is missing, malformed or does not match the config."""


class RunError(MegalithError):
    """A run directory is missing, incomplete or cannot be written."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def cannot_write(path: Path, error: OSError, hint: str | None = None) -> RunError:
    """The RunError for a failed write (disk full, read-only): the path, the reason, what to do."""
    hint = hint or (
        "free some disk space or choose a writable --output-dir (a run with checkpoints "
        "continues with `megalith train --resume RUN_DIR`)"
    )
    return RunError(f"cannot write {path}: {error.strerror or error}; {hint}")


EXTRAS = {
    "train": ("torch", "safetensors", "torchmetrics", "sklearn", "matplotlib", "jinja2"),
    "runtime": ("onnxruntime",),
    "export": ("onnx", "onnxscript"),
    "serve": ("fastapi", "uvicorn"),
    "pretrained": ("transformers", "peft"),
    "tensorboard": ("tensorboard",),
    "explain": ("captum",),
    "compress": ("torch_pruning",),
    "tune": ("optuna",),
    "privacy": ("opacus",),
    "audio": ("soundfile", "soxr"),
    "asr": ("jiwer",),
    "vision": ("kornia",),
    "recommend": ("faiss",),
}
"""The pip extra that installs each module a command may need (pyproject.toml)."""


def missing_extra(error: ModuleNotFoundError) -> MegalithError | None:
    """The one-line error for a command run where a part of Megalith is not installed (a
    runtime-only install asked to train, say), or None when the module is not one of ours."""
    module = (error.name or "").split(".")[0]
    if module == "pyarrow":  # the runtime reads Parquet only when it is there
        return MegalithError(
            "reading Parquet needs pyarrow, which is not installed here: pip install pyarrow"
        )
    for extra, modules in EXTRAS.items():
        if module in modules:
            return MegalithError(
                f"this command needs {module}, which is not installed here: "
                f'pip install "megalith[{extra}]"'
            )
    return None
