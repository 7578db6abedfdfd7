"""What a checkpoint costs the training steps: written in the foreground vs in the background.

One model of >= 100 MB of fp32 weights (two 4096 x 4096 linear layers and a head, 134 MB; with
AdamW's two moments each checkpoint writes ~400 MB) trains on the CPU for `--steps` steps,
three ways in the same process: no checkpoints, a checkpoint every `--every` steps written in
the foreground (`train.checkpoint_async: false`), and the same written in the background from a
copy (`true`). Each uses Megalith's own `save_checkpoint`, as the training loop calls it, and
waits for the last write at the end. Prints one JSON object: the wall seconds of each way
(median of `--repeats`), the overhead of each over no checkpoints, and
`async_over_sync_overhead`, the ratio of the two overheads (the goal is <= 0.2).

    python benchmarks/checkpoint_cost.py [--steps 40] [--every 10] [--repeats 3]
    python benchmarks/checkpoint_cost.py --tiny   # a small model, once: checks the code runs

The background write uses a core of its own: on a machine whose cores are busy with other work,
it slows the training steps it overlaps, and the ratio shows it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from megalith.training import checkpoint as ckpt


def build(width: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
    model.append(nn.Linear(width, 10))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4)


def train(width: int, steps: int, every: int | None, background: bool, root: Path) -> float:
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
            state = {"position": {"step": step}}
            ckpt.save_checkpoint(
                root, step, model.state_dict(), optimizer.state_dict(), state, background
            )
    ckpt.wait_until_durable()  # the last write belongs to the run
    return time.perf_counter() - started


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
    ways = {"none": (None, False), "sync": (every, False), "async": (every, True)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as folder:
        train(width, 2, None, False, Path(folder))  # warm-up: allocator, kernels
        for repeat in range(repeats):
            for name, (n, background) in ways.items():  # alternated: drift hits each alike
                root = Path(folder) / f"{name}-{repeat}" / "checkpoints"
                seconds[name].append(train(width, steps, n, background, root))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    sync_overhead = median["sync"] - median["none"]
    async_overhead = median["async"] - median["none"]
    model, _ = build(width)
    megabytes = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    print(
        json.dumps(
            {
                "model_mb": round(megabytes, 1),
                "steps": steps,
                "checkpoint_every": every,
                "seconds": {name: round(value, 3) for name, value in median.items()},
                "sync_overhead_s": round(sync_overhead, 3),
                "async_overhead_s": round(async_overhead, 3),
                "async_over_sync_overhead": round(async_overhead / sync_overhead, 3)
                if sync_overhead > 0
                else None,
                "machine": platform.processor() or platform.machine(),
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
