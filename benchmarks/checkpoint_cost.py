"""What a checkpoint costs the training steps: written in the foreground vs in the background.

One model of >= 100 MB of fp32 weights (two 4096 x 4096 linear layers and a head, 134 MB; with
AdamW's two moments each checkpoint writes ~400 MB) trains on the CPU for `--steps` steps,
in the same process, with no checkpoints and with a checkpoint every `--every` steps written:

- `sync`: in the foreground (`train.checkpoint_async: false`);
- `async`: Megalith's background write (`true`): a copy into shared memory, then a writer
  process of its own (megalith.training.checkpoint_writer) serialises, hashes and flushes;
- `async_thread`: the earlier way, for comparison: a copy (clone), then the same write on a
  background thread of the training process;
- `async_dcp`: torch.distributed.checkpoint's `async_save` (a staged copy, then a background
  thread) writing the sharded format FSDP runs use (megalith.training.sharded_checkpoint).

Each waits for its last write at the end. Prints one JSON object: the wall seconds of each way
(median of `--repeats`, the ways alternated within each repeat so that drift hits each alike),
the overhead of each over no checkpoints, their ratios to the sync overhead
(`async_over_sync_overhead` is the one the goal is about: <= 0.2), and the load average.
The writer process starts once per training process (a warm-up step starts it here).

    python benchmarks/checkpoint_cost.py [--steps 40] [--every 10] [--repeats 3]
    python benchmarks/checkpoint_cost.py --tiny   # a small model, once: checks the code runs

A background write needs a core of its own: on a machine whose cores are busy with other work,
it slows the training steps it overlaps, and the ratios show it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from megalith.training import checkpoint as ckpt
from megalith.training.checkpoint_files import write_checkpoint
from megalith.training.sharded_checkpoint import save_sharded_checkpoint


def build(width: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
    model.append(nn.Linear(width, 10))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4)


def train(width: int, steps: int, every: int | None, way: str, root: Path) -> float:
    """Wall seconds of `steps` training steps (batch 8), checkpointing every `every` steps."""
    model, optimizer = build(width)
    x, y = torch.randn(8, width), torch.randint(0, 10, (8,))
    started = time.perf_counter()
    for step in range(1, steps + 1):
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if every is not None and step % every == 0:
            checkpoint(way, root, step, model, optimizer)
    ckpt.wait_until_durable()  # the last write belongs to the run
    return time.perf_counter() - started


def checkpoint(way: str, root: Path, step: int, model: nn.Module, optimizer: Optimizer) -> None:
    state = {"position": {"step": step}}
    if way == "async_dcp":
        save_sharded_checkpoint(root, step, model, optimizer, state, background=True)
    elif way == "async_thread":  # the copy on this thread, the write on a background one
        ckpt.wait_until_durable()
        files = {
            "model.safetensors": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer.safetensors": {
                f"state.{p}.{k}": v.clone()
                for p, values in optimizer.state_dict()["state"].items()
                for k, v in values.items()
            },
        }
        ckpt.after_write(_write_and_flush, root, step, files, {"step": step, "loop": state})
    else:
        weights, moments = model.state_dict(), optimizer.state_dict()
        ckpt.save_checkpoint(root, step, weights, moments, state, background=way == "async")


def _write_and_flush(root: Path, step: int, files: dict[str, Any], manifest: dict) -> None:
    ckpt.make_durable(write_checkpoint(root, step, files, manifest))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--tiny", action="store_true", help="a 256-wide model, 6 steps, once")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, steps, every, repeats = 4096, args.steps, args.every, args.repeats
    if args.tiny:
        width, steps, every, repeats = 256, 6, 3, 1
    ways = {"none": None, "sync": every, "async": every, "async_thread": every}
    ways["async_dcp"] = every
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        for way in ("async", "async_dcp"):  # warm-up: allocator, kernels, the writer process
            train(width, 2, 1, way, Path(folder) / f"warm-{way}" / "checkpoints")
        for repeat in range(repeats):
            for name, n in ways.items():  # alternated: drift hits each alike
                root = Path(folder) / f"{name}-{repeat}" / "checkpoints"
                seconds[name].append(train(width, steps, n, name, root))
            load.append(os.getloadavg()[0])
    median = {name: statistics.median(values) for name, values in seconds.items()}
    overhead = {name: median[name] - median["none"] for name in ways if name != "none"}
    ratios = {
        f"{name}_over_sync_overhead": round(value / overhead["sync"], 3)
        if overhead["sync"] > 0
        else None
        for name, value in overhead.items()
        if name != "sync"
    }
    model, _ = build(width)
    megabytes = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    print(
        json.dumps(
            {
                "model_mb": round(megabytes, 1),
                "steps": steps,
                "checkpoint_every": every,
                "seconds": {name: round(value, 3) for name, value in median.items()},
                "all_seconds": {name: [round(v, 3) for v in vs] for name, vs in seconds.items()},
                "overhead_s": {name: round(value, 3) for name, value in overhead.items()},
                **ratios,
                "load_average_1min": [round(value, 2) for value in load],
                "cores": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
