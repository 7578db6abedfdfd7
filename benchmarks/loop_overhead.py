"""Megalith's training loop against a plain PyTorch loop: same module, data, batch size, optimizer.

Prints one JSON object per workload with samples/s and the ratio Megalith / plain, measured in
the same process, alternating them, median of several repeats. The plain loop runs twice: with
torch's default AdamW (what a hand-written loop gets) and with `fused=True` (what Megalith uses on
CPU and GPU), so `ratio_vs_fused` is the loop's own overhead, optimizer kernels aside. For the
convolutional workloads it runs a third time with the model channels-last, as Megalith runs it:
`ratio_vs_fused_channels_last` is the loop's own overhead with the convolution kernels aside too.

    python benchmarks/loop_overhead.py [--epochs 3] [--repeats 5] [--only digits-cnn resnet-64]
    python benchmarks/loop_overhead.py --tiny   # a few rows, once: checks the code runs

On a machine shared with other work, `--threads 1 --cpu-time` times this process's CPU time on
one thread, which time-slicing by other processes does not inflate.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from megalith.config import validate_config
from megalith.data.builtin import load_builtin
from megalith.data.preprocess import Preprocessor
from megalith.data.tensors import TensorTable
from megalith.models import build_model
from megalith.training.loop import TrainJob, train_loop

WORKLOADS = {
    "mlp-table": {
        "data": {"source": "builtin:digits_table"},
        "inputs": [{"name": f"px{i}", "type": "number"} for i in range(64)],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [256, 128]},
        "train": {"batch_size": 64, "optimizer": {"name": "adamw", "lr": 1e-3}},
    },
    "digits-cnn": {
        "data": {"source": "builtin:digits"},
        "inputs": [{"name": "image", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "cnn", "channels": [32, 64], "hidden": [128]},
        "train": {"batch_size": 64, "optimizer": {"name": "adamw", "lr": 3e-3}},
    },
    "resnet-64": {  # the digits as 64x64 RGB images: the ImageNet stem (7x7 stride 2, max pool)
        "data": {"source": "builtin:digits"},
        "inputs": [{"name": "image", "type": "image", "size": [64, 64], "channels": 3}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "resnet", "channels": [16, 32, 64], "blocks": [1, 1, 1]},
        "train": {"batch_size": 64, "optimizer": {"name": "adamw", "lr": 1e-3}},
    },
    "text-transformer": {
        "data": {"source": "builtin:docstrings"},
        "inputs": [
            {
                "name": "text",
                "type": "text",
                "vocab_size": 8000,
                "max_length": 48,
                "embedding_dim": 64,
                "encoder": {"kind": "transformer", "layers": 2, "heads": 4},
            }
        ],
        "outputs": [{"name": "module", "type": "category"}],
        "model": {"arch": "mlp", "hidden": []},
        "train": {"batch_size": 64, "optimizer": {"name": "adamw", "lr": 1e-3}},
    },
}
SLOWER = {"text-transformer": 5}
"""Workloads whose epochs are slow enough already: --copies is divided by this."""
MAX_ROWS = {"resnet-64": 640}
"""Workloads whose epochs are long even on one copy of the data: the first rows only."""
TINY_ROWS = 40


def prepare(
    raw: dict, copies: int, max_rows: int | None = None
) -> tuple[torch.nn.Module, TensorTable, object]:
    """The workload's model and its train tensors: the dataset repeated `copies` times, so that
    an epoch is long enough for steady state (a 1,797-row epoch lasts well under a second), or
    its first `max_rows` rows."""
    config = validate_config(raw)
    frame = load_builtin(config.data.source.removeprefix("builtin:"))
    frame = pd.concat([frame] * copies, ignore_index=True).iloc[:max_rows]
    pre = Preprocessor.fit(config.inputs, config.outputs, frame, base_dir=None, origin="bench")
    table = pre.transform(frame, base_dir=None, origin="bench")
    torch.manual_seed(0)
    model = build_model(config.model, pre.input_specs, pre.output_specs)
    return model, table, config


def plain_loop(
    model: torch.nn.Module,
    table: TensorTable,
    batch_size: int,
    lr: float,
    epochs: int,
    fused: bool = False,
    channels_last: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """The loop a user would write by hand (with torch's default AdamW, or its fused kernel;
    optionally with the model channels-last); returns seconds."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=fused or None)
    ((name, target),) = table.targets.items()
    start = clock()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(table), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(order), batch_size):
            index = order[i : i + batch_size]
            inputs = {k: v[index] for k, v in table.inputs.items()}
            loss = F.cross_entropy(model(inputs)[name], target[index])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return clock() - start


def megalith_loop(
    model: torch.nn.Module,
    table: TensorTable,
    config: object,
    epochs: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    train_config = config.train.model_copy(update={"epochs": epochs, "device": "cpu"})  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as folder:
        job = TrainJob(
            model=model,
            outputs=config.outputs,  # type: ignore[attr-defined]
            specs=[],
            train=table,
            val=None,
            config=train_config,
            seed=0,
            checkpoints=Path(folder) / "checkpoints",
        )
        start = clock()
        train_loop(job)
        return clock() - start


def has_convolutions(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def measure(name: str, raw: dict, args: argparse.Namespace) -> dict[str, object]:
    """One workload's loops, alternated `repeats` times so drift on a shared machine hits all;
    returns the JSON row."""
    copies = max(1, args.copies // SLOWER.get(name, 1))
    model, table, config = prepare(raw, copies, TINY_ROWS if args.tiny else MAX_ROWS.get(name))
    batch_size = config.train.batch_size  # type: ignore[attr-defined]
    lr = config.train.optimizer.lr  # type: ignore[attr-defined]
    clock = time.process_time if args.cpu_time else time.perf_counter
    plain = functools.partial(plain_loop, table=table, batch_size=batch_size, lr=lr, clock=clock)
    loops = {
        "plain": lambda m: plain(m, epochs=args.epochs),
        "plain_fused_adamw": lambda m: plain(m, epochs=args.epochs, fused=True),
        "megalith": lambda m: megalith_loop(m, table, config, args.epochs, clock),
    }
    if has_convolutions(model):
        loops["plain_fused_adamw_channels_last"] = lambda m: plain(
            m, epochs=args.epochs, fused=True, channels_last=True
        )
    times: dict[str, list[float]] = {loop: [] for loop in loops}
    for _ in range(args.repeats):
        for loop, run in loops.items():
            times[loop].append(run(copy.deepcopy(model)))
    rate = {loop: len(table) * args.epochs / statistics.median(t) for loop, t in times.items()}
    row: dict[str, object] = {
        "workload": name,
        "plain_samples_per_s": round(rate["plain"]),
        "megalith_samples_per_s": round(rate["megalith"]),
        "ratio": round(rate["megalith"] / rate["plain"], 3),
        "plain_fused_adamw_samples_per_s": round(rate["plain_fused_adamw"]),
        "ratio_vs_fused": round(rate["megalith"] / rate["plain_fused_adamw"], 3),
    }
    if "plain_fused_adamw_channels_last" in rate:
        cl = rate["plain_fused_adamw_channels_last"]
        row["plain_fused_adamw_channels_last_samples_per_s"] = round(cl)
        row["ratio_vs_fused_channels_last"] = round(rate["megalith"] / cl, 3)
    return row | {
        "rows": len(table),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "clock": "process cpu time" if args.cpu_time else "wall",
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=10, help="dataset repeats per epoch")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), help="these workloads")
    parser.add_argument("--tiny", action="store_true", help=f"{TINY_ROWS} rows, 1 epoch, once")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--cpu-time", action="store_true", help="time CPU, not wall, seconds")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        args.epochs, args.repeats, args.copies = 1, 1, 1
    for name, raw in WORKLOADS.items():
        if not args.only or name in args.only:
            print(json.dumps(measure(name, raw, args)), flush=True)


if __name__ == "__main__":
    main()
