"""Memory of each process resuming an FSDP run from a sharded checkpoint: read whole, or by pieces.

A model of `--layers` linear layers `--width` wide (default 8 x 2048 x 2048: 134 MB of fp32
weights, 403 MB of checkpoint with AdamW's two moments) is sharded by FSDP over `--processes`
Gloo processes on the CPU, takes one AdamW step and is checkpointed in shards
(megalith.training.sharded_checkpoint). Fresh processes then resume it, each way in its own
processes, so that each peak is its own:

- `whole`: the way before: every process reads every tensor whole
  (`load_latest_checkpoint(root)`), then FSDP cuts its shards out of them;
- `pieces`: Megalith's way: every process reads only the pieces it holds
  (`load_latest_checkpoint(root, pieces=True)` + megalith.training.sharded_resume).

Prints one JSON object: per way, each rank's peak RSS added by the resume (MB, the peak after the
resume less the peak before it, the model and optimizer already built), their largest, and the
ratio pieces / whole (the goal: about 1 / processes of the checkpoint instead of all of it).

    python benchmarks/resume_memory.py [--width 2048] [--layers 8] [--processes 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from megalith.training import checkpoint as ckpt
from megalith.training.distributed import Distributed
from megalith.training.sharded_checkpoint import save_sharded_checkpoint
from megalith.training.sharded_resume import read_own_pieces


def rank_main(role: str, root: Path, width: int, layers: int) -> None:
    """One process: write the checkpoint, or resume it one way; prints a JSON line."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    ddp = dataclasses.replace(Distributed.from_env(), sharded=True)
    torch.manual_seed(0)
    model = ddp.wrap(
        nn.Sequential(*(nn.Linear(width, width) for _ in range(layers))), torch.device("cpu")
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    if role == "write":
        model(torch.randn(4, width)).pow(2).mean().backward()
        optimizer.step()
        save_sharded_checkpoint(root, 1, model, optimizer, {"at": 1})
        ckpt.wait_until_durable()
    else:
        before = _peak_mb()
        if role == "whole":
            checkpoint = ckpt.load_latest_checkpoint(root)
            assert checkpoint is not None
            ddp.load_full_weights(model, checkpoint.model)
            ddp.load_optimizer_state(optimizer, ckpt.optimizer_state_dict(checkpoint))
        else:
            checkpoint = ckpt.load_latest_checkpoint(root, pieces=True)
            assert checkpoint is not None
            read_own_pieces(checkpoint, model, optimizer)
        print(json.dumps({"rank": ddp.rank, "added_mb": round(_peak_mb() - before, 1)}))
    dist.barrier()
    dist.destroy_process_group()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def launch(role: str, root: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    """`--processes` ranks of `role` under torchrun; each rank's JSON line."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={args.processes}", __file__, "--role", role]
    command += ["--root", str(root), "--width", str(args.width), "--layers", str(args.layers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return sorted((json.loads(line) for line in lines), key=lambda row: row["rank"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--role", choices=["write", "whole", "pieces"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role is not None:
        rank_main(args.role, args.root, args.width, args.layers)
        return
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "checkpoints"
        launch("write", root, args)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
        ranks = {way: launch(way, root, args) for way in ("whole", "pieces")}
    load.append(os.getloadavg()[0])
    peak = {way: max(row["added_mb"] for row in rows) for way, rows in ranks.items()}
    result = {
        "checkpoint_mb": round(size, 1),
        "processes": args.processes,
        "added_rss_mb_per_rank": {w: [r["added_mb"] for r in rows] for w, rows in ranks.items()},
        "largest_added_rss_mb": peak,
        "pieces_over_whole": round(peak["pieces"] / peak["whole"], 3) if peak["whole"] else None,
        "load_average_1min": [round(value, 2) for value in load],
        "cores": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
