"""What each clipping mode of DP-SGD costs: a private epoch over a non-private one, per model.

For each model below, three short runs in the same process on the same data and batches: no
privacy, `train.privacy.clipping: per_sample` (Opacus's GradSampleModule: every row's gradient
is materialised, then clipped and summed) and `clipping: ghost` (Opacus's fast gradient
clipping, Li et al. 2022, Bu et al. 2023: each row's gradient norm of Linear and Embedding
layers from their activations and output gradients, then a second backward pass). Each run
trains `--epochs` epochs in one thread; the fastest epoch of each (metrics.jsonl `time`:
training, the accountant's epsilon and validation) is kept, and the script prints one JSON line
per model with the two ratios and what `clipping: auto` takes for it.

- `mlp256-b256`, `mlp256-b1024`: an MLP of 256 x 256 on a 40,000-row make_classification
  table (20 numbers, 4 classes), batches of 256 and 1,024;
- `mlp64-b1024`: benchmarks/privacy.py's table model (one hidden layer of 64), batches of 1,024;
- `cnn-digits`: the cnn (channels 32, 64; a head of 128) on scikit-learn's 8x8 digits, 128 rows;
- `text-bag`: a text bag of 4,000 x 32 on the docstrings task, batches of 256 (the 20,000 x 64
  bag's per-sample epoch takes minutes: docs/privacy.md measured 47x).

    python benchmarks/privacy_clipping.py                      # every model (minutes)
    python benchmarks/privacy_clipping.py --only mlp256-b256 --epochs 1
    python benchmarks/privacy_clipping.py --quick              # a tiny MLP (a test runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from privacy import TEXT_TASKS, docstrings_task, table_task  # benchmarks/privacy.py
from rich.console import Console

import megalith as mg
from megalith.training.clipping_choice import ghost_clipping_for, ghost_weight_share

KINDS = ("non_private", "per_sample", "ghost")


def _table(folder: Path, rows: int) -> dict[str, Any]:
    csv = folder / f"table-{rows}.csv"
    if not csv.exists():
        table_task(rows).to_csv(csv, index=False)
    return {
        "data": {"source": str(csv), "split": {"val": 0.1, "test": 0.1}},
        "inputs": [{"name": f"f{i}", "type": "number"} for i in range(20)],
        "outputs": [{"name": "label", "type": "category"}],
    }


def _text(folder: Path) -> dict[str, Any]:
    csv = folder / "docstrings.csv"
    if not csv.exists():
        docstrings_task(*TEXT_TASKS["docstrings"]).to_csv(csv, index=False)
    text = {"name": "text", "type": "text", "tokenizer": "word", "encoder": "bag"}
    return {
        "data": {"source": str(csv), "split": {"val": 0.1, "test": 0.1}},
        "inputs": [{**text, "vocab_size": 4000, "embedding_dim": 32}],
        "outputs": [{"name": "module", "type": "category"}],
    }


def _digits(folder: Path) -> dict[str, Any]:
    return {
        "data": {"source": "builtin:digits", "split": {"val": 0.1, "test": 0.1}},
        "inputs": [{"name": "image", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
    }


MODELS: dict[str, tuple[Any, dict[str, Any], int, float]] = {
    "mlp256-b256": (lambda f: _table(f, 40_000), {"arch": "mlp", "hidden": [256, 256]}, 256, 5.0),
    "mlp256-b1024": (lambda f: _table(f, 40_000), {"arch": "mlp", "hidden": [256, 256]}, 1024, 5.0),
    "mlp64-b1024": (lambda f: _table(f, 12_000), {"arch": "mlp", "hidden": [64]}, 1024, 5.0),
    "cnn-digits": (_digits, {"arch": "cnn", "channels": [32, 64], "hidden": [128]}, 128, 1.0),
    "text-bag": (_text, {"arch": "mlp", "hidden": []}, 256, 1.0),
}
"""Each model: its data, model config, batch size (private and not) and clip."""
QUICK = {"mlp-quick": (lambda f: _table(f, 1500), {"arch": "mlp", "hidden": [32]}, 64, 5.0)}
"""--quick: a tiny MLP on 1,500 rows, one epoch (the test of this script)."""


def config_for(name: str, folder: Path, kind: str, epochs: int) -> dict[str, Any]:
    """The run of model `name` for one kind (non_private, per_sample, ghost)."""
    data, model, batch, clip = {**MODELS, **QUICK}[name]
    train: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": batch,
        "optimizer": {"name": "adam", "lr": 0.003},
        "baselines": False,
        "eval_batch_size": 2048,
        "threads": 1,
    }
    if kind != "non_private":
        train["privacy"] = {
            "epsilon": 8.0,
            "max_grad_norm": clip,
            "accountant": "rdp",
            "clipping": kind,
        }
    return {"name": f"{name}-{kind}", "seed": 0, **data(folder), "model": model, "train": train}


def fastest_epoch(run: mg.Run) -> float:
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    return min(json.loads(line)["time"] for line in lines if '"time"' in line)


def measure(name: str, folder: Path, epochs: int) -> dict[str, Any]:
    """The fastest epoch of each kind for model `name`, their ratios, and auto's choice."""
    seconds: dict[str, float] = {}
    auto = None
    for kind in KINDS:
        config = config_for(name, folder, kind, epochs)
        quiet = Console(stderr=True, quiet=True)
        run = mg.train(config, output_dir=folder / f"{name}-{kind}", console=quiet)
        seconds[kind] = fastest_epoch(run)
        if kind == "ghost":
            auto = "ghost" if ghost_clipping_for("auto", run.model) else "per_sample"
            assert run.metrics["privacy"]["clipping"] == "ghost"
    base = seconds["non_private"]
    return {
        "model": name,
        "batch_size": config["train"]["batch_size"],
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "linear_embedding_share": round(ghost_weight_share(run.model), 2),
        **{f"{kind}_epoch_seconds": round(value, 3) for kind, value in seconds.items()},
        "per_sample_vs_non_private": round(seconds["per_sample"] / base, 2),
        "ghost_vs_non_private": round(seconds["ghost"] / base, 2),
        "faster": "ghost" if seconds["ghost"] < seconds["per_sample"] else "per_sample",
        "auto_takes": auto,
        "load": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=2, help="Epochs per run (fastest kept).")
    parser.add_argument("--quick", action="store_true", help="A tiny MLP, one epoch.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = list(QUICK) if args.quick else args.only or list(MODELS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = measure(name, Path(tmp), 1 if args.quick else args.epochs)
            print(json.dumps({**row, "threads": 1}), flush=True)


if __name__ == "__main__":
    main()
