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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from safetensors.torch import save_file

from megalith.errors import RunError, cannot_write
from megalith.memory import format_bytes
from megalith.paths import check_confined, check_inside, check_readable, resolved

REQUIRED_FILES = ("config.yaml", "model.safetensors", "preprocessor.json")
OWN_FILES = (
    *REQUIRED_FILES,
    "metrics.jsonl",
    "eval.json",
    "report.html",
    "architecture.json",
    "pruning.json",
)
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
    def architecture(self) -> Path:
        """The widths of a pruned model's layers (megalith.models.widths); absent otherwise."""
        return self.path / "architecture.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def eval(self) -> Path:
        return self.path / "eval.json"

    @property
    def explanations(self) -> Path:
        """Where `megalith explain` writes by default (explain.html, summary.json, ...)."""
        return self.path / "explain"

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
        graphs = [name for name in ("model.onnx", "encoder.onnx") if (self.path / name).is_file()]
        if missing and graphs and (self.path / "bundle.json").is_file():
            raise RunError(
                f"{self.path} is an inference bundle (model.onnx); this command takes the run "
                "directory it was exported from (predict and serve take bundles too)"
            )
        if missing and graphs and not (self.path / "config.yaml").exists():
            raise RunError(  # an exported bundle that lost its description
                f"{self.path} is not a complete inference bundle: bundle.json is missing "
                f"(it holds {graphs[0]}); export the run again with `megalith export RUN`"
            )
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


MAX_HEADER_BYTES = 100_000_000
"""The largest safetensors header read (the safetensors library's own limit)."""
_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}
"""safetensors dtype names -> torch's (as `str(torch.float32)` spells them, less 'torch.')."""


@dataclass(frozen=True)
class StoredTensor:
    """What a safetensors header says of one tensor, before any of its bytes are read."""

    dtype: str
    """torch's name: 'float32', 'int64', or the file's own name when torch has none here."""
    shape: tuple[int, ...]


def read_safetensors_header(path: Path) -> dict[str, StoredTensor]:
    """Names, dtypes and shapes of the tensors in a safetensors file, from its header alone.

    The header is 8 bytes (its length, little-endian) and that many bytes of JSON; at most
    `MAX_HEADER_BYTES` are read, and the tensors' bytes not at all, so a file declaring a
    16 GiB tensor costs nothing to inspect.

    Raises:
        RunError: the file cannot be read or its header is not a safetensors header.
    """
    from megalith.structured import parse_json

    def refuse(why: str) -> RunError:
        return RunError(
            f"{path} is not a readable safetensors file ({why}); Megalith only loads "
            "safetensors and never unpickles"
        )

    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 0 < length <= MAX_HEADER_BYTES:
                raise refuse("no safetensors header at its start")
            header = handle.read(length)
        size = path.stat().st_size
    except OSError as error:
        raise refuse(str(error.strerror or error)) from None
    try:
        entries = parse_json(header, str(path), RunError)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise refuse("its header is not JSON") from None
    if len(header) < length or not isinstance(entries, dict):
        raise refuse("its header is cut short or not a JSON object")
    tensors, covered = {}, 0
    for name, entry in entries.items():
        if name == "__metadata__":
            continue
        tensor = _stored_tensor(entry)
        end = entry["data_offsets"][1] if tensor is not None else 0
        if tensor is None or 8 + length + end > size:
            raise refuse(f"the header entry of '{name}' is malformed or past the file's end")
        tensors[name], covered = tensor, max(covered, end)
    if 8 + length + covered != size:  # as safetensors itself requires; a padded file is not
        raise refuse(f"{format_bytes(size)}, but its header accounts for {8 + length + covered} B")
    return tensors


def _stored_tensor(entry: Any) -> StoredTensor | None:
    """The entry's dtype and shape, or None when it is malformed."""
    if not isinstance(entry, dict):
        return None
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(dtype, str) and isinstance(shape, list) and isinstance(offsets, list)):
        return None
    numbers = [*shape, *offsets]
    if len(offsets) != 2 or not all(_is_size(n) for n in numbers) or offsets[0] > offsets[1]:
        return None
    return StoredTensor(_DTYPES.get(dtype, dtype), tuple(shape))


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_weights_fit(
    weights: Mapping[str, torch.Tensor | StoredTensor], model: torch.nn.Module, where: str | Path
) -> None:
    """RunError when saved weights (a run's or a checkpoint's) do not fit the model its
    config.yaml builds: a missing or unexpected name, another shape or another dtype.

    Args:
        weights: names -> tensors as read from safetensors, or what its header says of them
            (`read_safetensors_header`), so that a file is checked before it is read.
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
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise RunError(
                f"{where} does not match the model in config.yaml: '{name}' has shape "
                f"{tuple(tensor.shape)}, the model needs {tuple(expected[name].shape)}"
            )
        stored, needed = (str(t.dtype).removeprefix("torch.") for t in (tensor, expected[name]))
        if stored != needed:
            raise RunError(
                f"{where} does not match the model in config.yaml: '{name}' holds {stored}, "
                f"the model needs {needed}"
            )
