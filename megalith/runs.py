"""The run directory: everything a later stage needs, independent of the process that trained it.

runs/<name>/
  config.yaml         fully resolved config, defaults filled in
  model.safetensors   weights (safetensors only)
  preprocessor.json   vocabularies, normalisation stats, class names
  checkpoints/        resumable state, written atomically, the last two kept
  metrics.jsonl       one JSON object per logged step / epoch
  eval.json           final metrics on the val and test splits
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from safetensors.torch import save_file

from megalith.errors import RunError, cannot_write
from megalith.paths import check_confined, check_inside, check_readable, resolved

REQUIRED_FILES = ("config.yaml", "model.safetensors", "preprocessor.json")
OWN_FILES = (*REQUIRED_FILES, "metrics.jsonl", "eval.json", "report.html")
OWN_FOLDERS = ("checkpoints", "plots", "pretrained", "adapter", "tensorboard")


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def preprocessor(self) -> Path:
        return self.path / "preprocessor.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def eval(self) -> Path:
        return self.path / "eval.json"

    @staticmethod
    def default_for(name: str, root: Path = Path("runs")) -> RunDir:
        """runs/<name>-<YYYYmmdd-HHMMSS>, with a suffix if that already exists."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = root / f"{name}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{name}-{stamp}-{n}"
        return RunDir(path)

    def create(self, overwrite: bool = False) -> None:
        """Make the directory; refuse to write into a non-empty one unless overwrite is set."""
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"output directory {self.path} exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not overwrite:
                raise RunError(
                    f"output directory {self.path} already exists and is not empty; "
                    "choose another --output-dir, pass --overwrite, or --resume it"
                )
            check_confined(self.path)  # before anything in it is replaced or deleted
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise RunError(
                f"cannot write to output directory {self.path}: {error.strerror}"
            ) from None

    def check_complete(self) -> None:
        """RunError naming what is missing when this is not a finished run directory, or
        when it holds a symlink leading out of it (see `megalith.paths.check_confined`)."""
        check_readable(self.path, "run directory", kind="folder", error=RunError)
        check_confined(self.path)
        missing = [name for name in REQUIRED_FILES if not (self.path / name).is_file()]
        if missing:
            raise RunError(
                f"{self.path} is not a complete run directory: missing {', '.join(missing)} "
                "(was training interrupted? resume it with `megalith train --resume RUN_DIR`)"
            )

    def owns(self, path: Path) -> bool:
        """True when `path` is one of the files Megalith writes in this run (config, weights,
        metrics, report, checkpoints, ...): a verb's output must never replace one."""
        try:
            inside = resolved(path).relative_to(resolved(self.path))
        except ValueError:
            return False
        parts = inside.parts
        return bool(parts) and (
            (len(parts) == 1 and parts[0] in OWN_FILES) or parts[0] in OWN_FOLDERS
        )

    def write_json(self, path: Path, data: Any) -> None:
        """Write JSON atomically: a temporary file, then a rename."""
        self.write_text(path, json.dumps(data, indent=2) + "\n")

    def write_text(self, path: Path, text: str) -> None:
        """Write text atomically: a temporary file, then a rename.

        Raises:
            RunError: the file cannot be written (disk full, read-only), or `path` leads out
                of the run through a symlink; no temporary file stays.
        """
        check_inside(self.path, path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.unlink(missing_ok=True)  # a leftover (or planted) link is never written through
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise cannot_write(path, error) from error


def save_weights_atomically(model: torch.nn.Module, path: Path) -> None:
    """Weights to safetensors under a temporary name, then renamed; RunError when it cannot."""
    weights = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_tensors_atomically(weights, path)


def save_tensors_atomically(weights: dict[str, torch.Tensor], path: Path) -> None:
    """Tensors to safetensors under a temporary name, then renamed; RunError when it cannot."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)  # a leftover (or planted) link is never written through
        save_file(weights, tmp)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, error) from error


def check_weights_fit(
    weights: dict[str, torch.Tensor], model: torch.nn.Module, where: str | Path
) -> None:
    """RunError when saved weights (a run's or a checkpoint's) do not fit the model its
    config.yaml builds: a missing or unexpected name, or another shape.

    Args:
        weights: names -> tensors, as read from safetensors.
        model: the model built from the run's config.
        where: the file or folder the weights came from, for the message.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        found = [("missing", missing), ("unexpected", unexpected)]
        shown = "; ".join(f"{kind} {', '.join(names[:3])}" for kind, names in found if names)
        raise RunError(f"{where} does not match the model in config.yaml ({shown})")
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise RunError(
                f"{where} does not match the model in config.yaml: '{name}' has shape "
                f"{tuple(tensor.shape)}, the model needs {tuple(expected[name].shape)}"
            )
