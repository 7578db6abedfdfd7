"""Resumable training state, written atomically: tensors in safetensors, everything else in JSON.

A checkpoint is a folder `checkpoints/step-NNNNNNNNN/` holding `model.safetensors`,
`optimizer.safetensors` and `state.json`. It is written under a temporary name, flushed,
then renamed, so a run killed at any moment leaves only complete checkpoints. `state.json`
is written last and holds the SHA-256 of each tensor file; a checkpoint whose files do not
match is skipped with a warning and the previous one is used. Nothing is ever unpickled.
"""

from __future__ import annotations

import atexit
import json
import random
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from megalith.errors import RunError
from megalith.memory import available_bytes, format_bytes
from megalith.paths import check_inside, file_sha256
from megalith.runs import read_safetensors_header, save_tensors_atomically
from megalith.training.checkpoint_files import (
    KEEP_LAST,
    STATE_FILE,
    begin_checkpoint,
    checkpoint_dirs,
    make_durable,
    seal_checkpoint,
    unwritable,
    write_checkpoint,
)
from megalith.training.checkpoint_writer import CheckpointWriter
from megalith.training.dcp_shards import read_whole, tensor_layout

__all__ = [
    "KEEP_LAST",
    "STATE_FILE",
    "Checkpoint",
    "begin_checkpoint",
    "load_latest_checkpoint",
    "make_durable",
    "save_checkpoint",
    "seal_checkpoint",
    "unwritable",
    "wait_until_durable",
]

SHARDED_FORMAT = "dcp-safetensors"
"""state.json `format` of a sharded checkpoint (megalith.training.sharded_checkpoint)."""
SHARDS_DIR = "shards"
RNG_FILE = "rng.safetensors"


@dataclass
class Checkpoint:
    """A verified checkpoint, loaded into memory."""

    path: Path
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    state: dict[str, Any]
    """The loop's own state (epoch, step, early stopping), the scheduler and the grad scaler."""
    pieces: TensorFiles | None = None
    """Set when the tensors were left in their files for each process to read only its own
    pieces of them (`load_latest_checkpoint(pieces=True)`): `model` then holds meta tensors
    (names, shapes and dtypes from the headers, no values) and `optimizer` the random
    generators only."""


@dataclass(frozen=True)
class TensorFiles:
    """Where a checkpoint's tensors are, for megalith.training.sharded_resume."""

    folder: Path
    """Every safetensors file in it holds some of them."""
    model_prefix: str
    """What the model's weight names start with there: 'model.' in shards, '' otherwise."""


def save_checkpoint(
    root: Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    state: dict[str, Any],
    background: bool = False,
) -> Path:
    """Write `root/step-NNNNNNNNN` atomically with RNG states included; keep the last two.

    The folder is complete and renamed into place before this returns, so a killed process
    always finds it (or the one before). Flushing it to the disk (fsync, for a power cut) runs
    in the background while training goes on; the next save waits for it first, so the
    checkpoint before the newest, the one kept as a fallback, is always on the disk.

    With `background` (`train.checkpoint_async`), only a copy of the tensors is taken here,
    into shared memory; writing, hashing, renaming and flushing run in a writer process while
    training goes on (megalith.training.checkpoint_writer), and the next save (or the end of
    training) waits for them. A process killed meanwhile leaves the folder under its temporary
    name: the previous checkpoint stays the newest complete one.

    Raises:
        RunError: the folder cannot be written (disk full, read-only), or `root` is a symlink
            leading out of the run directory holding it; nothing half-written stays. In the
            background, raised by the next save or `wait_until_durable`.
    """
    wait_until_durable()
    check_inside(root.parent, root)  # never write, nor prune, through a link out of the run
    tensors, optimizer_json = _split_optimizer_state(optimizer_state)
    tensors.update(rng_tensors())
    model = _contiguous(model_state)
    manifest = {"step": step, "optimizer": optimizer_json, "rng": rng_json(), "loop": state}
    if not background:
        files = {"model.safetensors": model, "optimizer.safetensors": tensors}
        final = write_checkpoint(root, step, files, manifest)
        _flushing.append(_flusher.submit(make_durable, final))
        return final
    # a snapshot in shared memory: training changes the weights and moments in place
    files = {"model.safetensors": model, "optimizer.safetensors": tensors}
    _writer.write(root, step, files, json.loads(json.dumps(manifest)))
    return root / f"step-{step:09d}"


def resolve_checkpoint_async(value: bool | str, device: torch.device) -> bool:
    """`train.checkpoint_async`: auto writes in the background on a GPU (where the copy to the
    CPU is the cost a step pays), in the foreground on a CPU."""
    return device.type == "cuda" if value == "auto" else bool(value)


_writer = CheckpointWriter()
atexit.register(_writer.stop)
_flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="megalith-fsync")
_flushing: list[Future[Any]] = []


def after_write(task: Callable[..., Any], *args: Any) -> None:
    """Run `task(*args)` on the checkpoint thread, after the writes before it; the next save
    and `wait_until_durable` wait for it (and raise its error)."""
    _flushing.append(_flusher.submit(task, *args))


def wait_until_durable() -> None:
    """Block until every checkpoint written so far is flushed to the disk.

    Raises:
        RunError: the operating system could not flush one (a failing disk).
    """
    _writer.wait()
    while _flushing:
        try:
            _flushing.pop(0).result()
        except OSError as error:
            raise RunError(
                f"cannot flush a checkpoint to the disk: {error.strerror or error}; check the "
                "disk, then resume from the last complete checkpoint"
            ) from error


def load_latest_checkpoint(root: Path, pieces: bool = False) -> Checkpoint | None:
    """The newest checkpoint whose files verify, or None when there is none.

    Args:
        pieces: verify the files but leave the weights and optimizer moments in them
            (`Checkpoint.pieces`), for a sharded run whose every process then reads only the
            pieces it holds (megalith.training.sharded_resume); the memory check counts this
            process's share of them.
    """
    for path in reversed(checkpoint_dirs(root)):
        try:
            return _load_checkpoint(path, pieces)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            warnings.warn(f"skipping checkpoint {path}: {error}", stacklevel=2)
    return None


def restore_rng(checkpoint: Checkpoint) -> None:
    """Put Python's, NumPy's and torch's random generators back where the checkpoint left them."""
    rng = checkpoint.state["rng"]
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = rng["numpy"]
    np.random.set_state((np_state[0], np.array(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(checkpoint.optimizer["rng.torch"])
    cuda_states = [v for k, v in sorted(checkpoint.optimizer.items()) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)


def optimizer_state_dict(checkpoint: Checkpoint) -> dict[str, Any]:
    """Rebuild the dict that `Optimizer.load_state_dict` expects."""
    layout = checkpoint.state["optimizer"]
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in checkpoint.optimizer.items():
        if key.startswith("state."):
            _, param, name = key.split(".", 2)
            per_param.setdefault(int(param), {})[name] = value
    for param, values in layout["scalars"].items():
        per_param.setdefault(int(param), {}).update(values)
    return {"state": per_param, "param_groups": layout["param_groups"]}


def _load_checkpoint(path: Path, pieces: bool) -> Checkpoint:
    manifest = json.loads((path / STATE_FILE).read_text())
    _check_files(path, manifest, share=_processes() if pieces else 1)
    sharded = manifest.get("format") == SHARDED_FORMAT
    if pieces:
        files = TensorFiles(path / SHARDS_DIR, "model.") if sharded else TensorFiles(path, "")
        return Checkpoint(path, _stored_weights(files), _rng(path), manifest, files)
    if sharded:
        model, optimizer = split_whole_shards(read_whole(path / SHARDS_DIR))
        optimizer.update(load_file(path / RNG_FILE))
        return Checkpoint(path=path, model=model, optimizer=optimizer, state=manifest)
    return Checkpoint(
        path=path,
        model=load_file(path / "model.safetensors"),
        optimizer=load_file(path / "optimizer.safetensors"),
        state=manifest,
    )


def _check_files(path: Path, manifest: dict[str, Any], share: int) -> None:
    """Every file a safetensors file, small enough for memory (1/share of them is read
    here), and matching its SHA-256."""
    available = available_bytes()
    for name in manifest["files"]:  # before hashing or reading
        if name.endswith(".safetensors"):
            try:
                read_safetensors_header(path / name)
            except RunError as error:
                raise ValueError(str(error)) from None
    size = sum((path / name).stat().st_size for name in manifest["files"]) // share
    if size > available:
        raise ValueError(
            f"its files hold {format_bytes(size)}, more than the {format_bytes(available)} of "
            "memory available" + (f" (per process, of {share})" if share > 1 else "")
        )
    for name, digest in manifest["files"].items():
        if file_sha256(path / name) != digest:
            raise ValueError(f"{name} does not match its checksum (truncated or corrupt)")


def _stored_weights(files: TensorFiles) -> dict[str, torch.Tensor]:
    """The model's weights as meta tensors: names, shapes and dtypes, no values."""
    layout, prefix = tensor_layout(files.folder), files.model_prefix
    names = (
        [name for name in layout if name.startswith(prefix)]
        if prefix
        else list(read_safetensors_header(files.folder / "model.safetensors"))
    )
    return {
        name.removeprefix(prefix): torch.empty(
            layout[name].size, dtype=layout[name].properties.dtype, device="meta"
        )
        for name in names
    }


def _rng(path: Path) -> dict[str, torch.Tensor]:
    """The random generators' states only, from rng.safetensors or optimizer.safetensors."""
    from safetensors import safe_open

    name = RNG_FILE if (path / RNG_FILE).is_file() else "optimizer.safetensors"
    with safe_open(str(path / name), framework="pt") as file:
        names = file.keys()  # a safetensors file is not iterable
        return {key: file.get_tensor(key) for key in names if key.startswith("rng.")}


def _processes() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def split_whole_shards(
    tensors: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The tensors of a sharded checkpoint (`model.NAME`, `state.N.NAME`), read whole, as the
    model's weights and the optimizer's tensors of an unsharded one."""
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    optimizer = {k: v for k, v in tensors.items() if k.startswith("state.")}
    return model, optimizer


def _split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors go to safetensors; scalars and param groups go to JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param), {})[name] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i:03d}"] = cuda_state
    return tensors


def rng_json() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
    }


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().cpu().contiguous() for name, t in tensors.items()}


def save_best(root: Path, weights: dict[str, torch.Tensor]) -> None:
    """The best epoch's weights (early stopping), replaced atomically."""
    root.mkdir(parents=True, exist_ok=True)
    save_tensors_atomically(weights, root / "best.safetensors")
