"""Sharded checkpoints of an FSDP run: every process writes its own shards, nobody gathers.

With `train.strategy: fsdp` on several processes, a checkpoint `checkpoints/step-NNNNNNNNN/`
holds `shards/` (one safetensors file per process, written in parallel through
torch.distributed.checkpoint: megalith.training.dcp_shards), `rng.safetensors` (rank 0's random
generators) and `state.json` (the optimizer's param groups and scalars, the loop's state, the
SHA-256 of every file, `"format": "dcp-safetensors"`). Each process takes the SHA-256 of its own
shard file while writing it and sends it to rank 0, so no file is read back to be hashed. As
with an unsharded checkpoint, it is written under a temporary name and renamed by rank 0 once
every process's shards are on the disk, state.json last, so a process killed at any moment
leaves the previous checkpoint the newest complete one. Any number of processes reads it back
(megalith.training.checkpoint reads the shards whole; a sharded run's processes read only their
own pieces of them: megalith.training.sharded_resume), and the run's final `model.safetensors`
is still one whole file.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from megalith.paths import check_inside
from megalith.training import checkpoint as ckpt
from megalith.training.dcp_shards import start_writing_shards, write_shards
from megalith.training.distributed import gloo_group


def save_sharded_checkpoint(
    root: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    background: bool = False,
) -> Path:
    """Write `root/step-NNNNNNNNN` from every process's shards (a collective: every process
    calls it at the same step); keep the last two.

    Args:
        state: the loop's state; rank 0's is the one kept.
        background: take a copy of this process's shards now and write it on a background
            thread (DCP's async_save) while training goes on; the next save, or
            `checkpoint.wait_until_durable`, waits for it.
    Returns:
        The checkpoint's folder (complete once the write is done).
    Raises:
        RunError: the folder cannot be written (disk full, read-only), or `root` leads out of
            the run directory; in the background, raised by the next save.
    """
    ckpt.wait_until_durable()
    main = not dist.is_initialized() or dist.get_rank() == 0
    tmp, final = root / f".tmp-step-{step:09d}-shards", root / f"step-{step:09d}"
    if main:
        check_inside(root.parent, root)  # never write, nor prune, through a link out of the run
        tmp, final = ckpt.begin_checkpoint(root, step, "shards")
    if dist.is_initialized():
        dist.barrier()  # the temporary folder exists and no stale one is left
    tensors, layout = sharded_tensors(model, optimizer)
    manifest = {"step": step, "optimizer": layout, "rng": ckpt.rng_json(), "loop": state}
    manifest = json.loads(json.dumps({**manifest, "format": ckpt.SHARDED_FORMAT}))
    rng = ckpt.rng_tensors()
    if not background:
        digests = _gathered(write_shards(tmp / ckpt.SHARDS_DIR, tensors))
        if main:  # every process's shards are on the disk once write_shards returns
            ckpt.after_write(ckpt.make_durable, _seal(tmp, final, rng, manifest, digests))
        return final
    written, own = start_writing_shards(tmp / ckpt.SHARDS_DIR, tensors, _writer_group())
    ckpt.after_write(_seal_when_written, written, own, tmp, final, rng, manifest, main)
    return final


def sharded_tensors(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's tensors of the model and optimizer as DCP saves them (`model.NAME`,
    `state.N.NAME`: DTensors stay sharded), and the optimizer's param groups and non-tensor
    values as JSON (the layout `checkpoint.optimizer_state_dict` puts back together)."""
    tensors = {f"model.{name}": value.detach() for name, value in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for param, values in optimizer_state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param}.{name}"] = value.detach()
            else:
                scalars.setdefault(str(param), {})[name] = value
    return tensors, {"scalars": scalars, "param_groups": optimizer_state["param_groups"]}


def _seal(
    tmp: Path,
    final: Path,
    rng: dict[str, torch.Tensor],
    manifest: dict[str, Any],
    digests: dict[str, str],
) -> Path:
    """Rank 0, once every process's shards are written: RNG, state.json (with the shards'
    digests, taken by the processes that wrote them), then the rename."""
    from safetensors.torch import save_file

    try:
        save_file(rng, tmp / ckpt.RNG_FILE)
    except OSError as error:
        raise ckpt.unwritable(final, error) from error
    return ckpt.seal_checkpoint(tmp, final, manifest, digests)


def _seal_when_written(
    written: Future[Any],
    own: dict[str, str],
    tmp: Path,
    final: Path,
    rng: dict[str, torch.Tensor],
    manifest: dict[str, Any],
    main: bool,
) -> None:
    written.result()  # the collective write ended on every process
    digests = _gathered(own)
    if main:
        ckpt.make_durable(_seal(tmp, final, rng, manifest, digests))


def _gathered(own: dict[str, str]) -> dict[str, str]:
    """Every process's shard digests (file name -> SHA-256), as paths under the checkpoint
    folder, on rank 0 (a collective over the writer group; other ranks get their own)."""
    shards = {f"{ckpt.SHARDS_DIR}/{name}": digest for name, digest in own.items()}
    if not dist.is_initialized():
        return shards
    main = dist.get_rank() == 0
    every: list[Any] = [None] * dist.get_world_size() if main else []
    dist.gather_object(shards, every if main else None, dst=0, group=_writer_group())
    return {name: digest for part in every for name, digest in part.items()} if main else shards


def _writer_group() -> dist.ProcessGroup | None:
    """A Gloo group of the training processes for checkpoint writes (made once, a collective:
    every process reaches its first sharded save at the same step)."""
    return gloo_group("writer") if dist.is_initialized() else None
