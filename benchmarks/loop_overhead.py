"""Megalith's training loop against a plain PyTorch loop: same module, data, batch size, optimizer.

Prints one JSON object per workload with samples/s and the ratio Megalith / plain, measured in
the same process, alternating them, median of several repeats. The plain loop runs twice: with
torch's default AdamW (what a hand-written loop gets) and with `fused=True` (what Megalith uses on
CPU and GPU), so `ratio_vs_fused` is the loop's own overhead, optimizer kernels aside.

    python benchmarks/loop_overhead.py [--epochs 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import tempfile
import time
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


def prepare(raw: dict, copies: int) -> tuple[torch.nn.Module, TensorTable, object]:
    """The workload's model and its train tensors: the dataset repeated `copies` times, so that
    an epoch is long enough for steady state (a 1,797-row epoch lasts well under a second)."""
    config = validate_config(raw)
    frame = load_builtin(config.data.source.removeprefix("builtin:"))
    frame = pd.concat([frame] * copies, ignore_index=True)
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
) -> float:
    """The loop a user would write by hand (with torch's default AdamW, or its fused kernel);
    returns seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=fused or None)
    ((name, target),) = table.targets.items()
    start = time.perf_counter()
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
    return time.perf_counter() - start


def megalith_loop(model: torch.nn.Module, table: TensorTable, config: object, epochs: int) -> float:
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
        start = time.perf_counter()
        train_loop(job)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=10, help="dataset repeats per epoch")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), help="these workloads")
    args = parser.parse_args()
    for name, raw in WORKLOADS.items():
        if args.only and name not in args.only:
            continue
        model, table, config = prepare(raw, max(1, args.copies // SLOWER.get(name, 1)))
        batch_size = config.train.batch_size  # type: ignore[attr-defined]
        lr = config.train.optimizer.lr  # type: ignore[attr-defined]
        plain_times, fused_times, ours_times = [], [], []
        for _ in range(args.repeats):  # alternate, so drift on a shared machine hits all three
            plain_times.append(plain_loop(copy.deepcopy(model), table, batch_size, lr, args.epochs))
            fused_times.append(
                plain_loop(copy.deepcopy(model), table, batch_size, lr, args.epochs, fused=True)
            )
            ours_times.append(megalith_loop(copy.deepcopy(model), table, config, args.epochs))
        samples = len(table) * args.epochs
        plain, fused, ours = (
            samples / statistics.median(times) for times in (plain_times, fused_times, ours_times)
        )
        print(
            json.dumps(
                {
                    "workload": name,
                    "plain_samples_per_s": round(plain),
                    "megalith_samples_per_s": round(ours),
                    "ratio": round(ours / plain, 3),
                    "plain_fused_adamw_samples_per_s": round(fused),
                    "ratio_vs_fused": round(ours / fused, 3),
                    "epochs": args.epochs,
                    "repeats": args.repeats,
                    "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
                    "torch": torch.__version__,
                }
            )
        )


if __name__ == "__main__":
    main()
