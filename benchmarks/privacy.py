"""Private training (DP-SGD through Opacus): accuracy against epsilon, epoch time, leakage.

Two tasks of at least 10,000 rows, both built offline:
- `table`: a synthetic 4-class table (scikit-learn make_classification, 20 numeric features,
  12,000 rows, seed 0) with an MLP;
- `docstrings`: installed packages' docstrings labelled by package (16 classes, 700 rows
  each: 11,200 rows, as benchmarks/text_baseline.py builds them) with `init`'s text bag model;
- `docstrings2`: a second, disjoint text task from the same folder: the docstrings of the next
  16 packages by size (the 17th to the 32nd), at most 900 rows each (about 12,000 rows here;
  the packages depend on what is installed), with the same models.
Each is trained with the same config at epsilon 1, 3, 8 and without privacy (inf); the script
prints one JSON line per run (test accuracy, its ratio to the non-private run, seconds per
epoch and their ratio to the non-private run's, measured in the same process), then the
membership-inference audit (megalith audit-privacy) of an overfit pair: the table's first
`--overfit-rows` rows trained long without privacy and at epsilon 3.

    python benchmarks/privacy.py                 # both tasks (minutes on a laptop CPU)
    python benchmarks/privacy.py --quick         # tiny: the table task, eps 3 and inf
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from sklearn.datasets import make_classification

import megalith as mg
from megalith.data.docstrings import docstrings_table
from megalith.privacy import audit_privacy

EPSILONS = (1.0, 3.0, 8.0, math.inf)
PRIVATE_TEXT_EPOCHS = 6
"""A private text run's epochs, as a multiple of the non-private run's (with PRIVATE_TEXT_BATCH)."""
PRIVATE_TEXT_BATCH = 2048
"""A private text run's batch: twice the table's 1,024 (0.587 against 0.577 at epsilon 8 for
the same 60 epochs; 4,096 for 120 epochs fell back to 0.573: too few steps)."""


def table_task(rows: int) -> pd.DataFrame:
    """A synthetic classification table: 20 numeric features, 4 classes, 10% label noise."""
    x, y = make_classification(
        n_samples=rows,
        n_features=20,
        n_informative=10,
        n_classes=4,
        flip_y=0.1,
        random_state=0,
    )
    frame = pd.DataFrame(x.round(4), columns=[f"f{i}" for i in range(20)])
    frame["label"] = [f"c{v}" for v in y]
    return frame


def docstrings_task(per_class: int, skip_largest: int = 0) -> pd.DataFrame:
    """Installed packages' docstrings, at most `per_class` rows for each of 16 packages (those
    after the `skip_largest` largest)."""
    frame = docstrings_table(Path(sysconfig.get_paths()["purelib"]), skip_largest)
    return frame[frame.groupby("module").cumcount() < per_class].reset_index(drop=True)


def config_for(
    task: str,
    csv: Path,
    epochs: int,
    epsilon: float,
    same_batch: bool = False,
    clipping: str = "auto",
) -> dict[str, Any]:
    """The same model for every epsilon. Private runs take the usual DP-SGD settings: batches
    of 1,024 rows (the noise is added once per batch, so it weighs less in a larger one) and a
    clip near the typical per-row gradient norm (5 for the table, 1 for the text); non-private
    runs take batches of 256 (the table) or what `megalith init` writes (the text: 128 rows,
    AdamW with weight decay 0.1), unless `same_batch` (for timing: both run batches of 1,024).
    Private text runs hash single words (no pairs) into the same 20,000 ids (tokenizer: hash,
    no vocabulary), weight them by idf (the bag becomes an L2-normalised TF-IDF vector times the
    embeddings), start from small embeddings (train.privacy.text_embedding_scale), take batches
    of PRIVATE_TEXT_BATCH rows for PRIVATE_TEXT_EPOCHS times the epochs (DP-SGD takes few,
    large steps, about 4 an epoch here, and its noise grows slowly with their number) and the
    PRV accountant (Megalith's default, tighter than RDP: about 6% less noise for the same
    epsilon)."""
    private = math.isfinite(epsilon)
    private_text = private and task != "table" and not same_batch
    optimizer: dict[str, Any] = {"name": "adam", "lr": 0.01}
    batch, clip = 1024 if private or same_batch else 256, 5.0
    if task == "table":
        inputs = [{"name": f"f{i}", "type": "number"} for i in range(20)]
        outputs, model = [{"name": "label", "type": "category"}], {"arch": "mlp", "hidden": [64]}
    else:  # init's text bag (word pairs too), with a vocabulary of 20,000 x 64
        text = {"name": "text", "type": "text", "tokenizer": "word", "ngrams": 2}
        inputs = [{**text, "vocab_size": 20_000, "embedding_dim": 64, "encoder": "bag"}]
        if private_text:  # hashed words: an L2-normalised TF-IDF bag
            inputs[0].update(tokenizer="hash", idf=True, ngrams=1)
            epochs, batch = epochs * PRIVATE_TEXT_EPOCHS, PRIVATE_TEXT_BATCH
        elif not (private or same_batch):
            batch = 128
        outputs, model = [{"name": "module", "type": "category"}], {"arch": "mlp", "hidden": []}
        optimizer = {"name": "adamw", "lr": 0.01, "weight_decay": 0.0 if private else 0.1}
        clip = 1.0
    train: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": batch,
        "optimizer": optimizer,
        "baselines": False,
        "eval_batch_size": 2048,
    }
    if private:
        train["privacy"] = {
            "epsilon": epsilon,
            "max_grad_norm": clip,
            "accountant": "prv" if private_text else "rdp",
            "clipping": clipping,
        }
    return {
        "name": f"{task}-eps{epsilon}",
        "seed": 0,
        "data": {"source": str(csv), "split": {"val": 0.1, "test": 0.1}},
        "inputs": inputs,
        "outputs": outputs,
        "model": model,
        "train": train,
    }


def epoch_seconds(run: mg.Run) -> list[float]:
    """Seconds of each of the run's epochs (metrics.jsonl `time`: training, the accountant's
    epsilon and validation)."""
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["time"] for line in lines if '"time"' in line]


def epoch_time_ratio(
    task: str, csv: Path, folder: Path, repeats: int, per_sample: bool = True
) -> dict[str, Any]:
    """Private (epsilon 8) over non-private epoch time, with per-sample and with ghost
    clipping: short runs of each, interleaved, the fastest epoch of each kind (the least
    disturbed by other work on the machine)."""
    kinds = {"non_private": "auto", "per_sample": "per_sample", "ghost": "ghost"}
    if not per_sample:  # (the text bag's per-sample clipping takes minutes an epoch)
        del kinds["per_sample"]
    fastest = dict.fromkeys(kinds, math.inf)
    for repeat in range(repeats):
        for kind, clipping in kinds.items():
            epsilon = math.inf if kind == "non_private" else 8.0
            config = config_for(task, csv, 2, epsilon, same_batch=True, clipping=clipping)
            quiet = Console(stderr=True, quiet=True)
            run = mg.train(
                config, output_dir=folder / f"time-{task}-{kind}-{repeat}", console=quiet
            )
            fastest[kind] = min(fastest[kind], *epoch_seconds(run))
    base = fastest["non_private"]
    return {
        "task": task,
        "measure": "epoch time at batch 1024, fastest of interleaved runs",
        "non_private_epoch_seconds": round(base, 3),
        "per_sample_epoch_seconds": round(fastest.get("per_sample", math.nan), 3),
        "ghost_epoch_seconds": round(fastest["ghost"], 3),
        "per_sample_vs_non_private": round(fastest.get("per_sample", math.nan) / base, 2),
        "ghost_vs_non_private": round(fastest["ghost"] / base, 2),
    }


def accuracy_against_epsilon(
    task: str, csv: Path, folder: Path, epochs: int, epsilons: tuple[float, ...]
) -> list[dict[str, Any]]:
    runs = {}
    for epsilon in epsilons:
        config = config_for(task, csv, epochs, epsilon)
        quiet = Console(stderr=True, quiet=True)
        runs[epsilon] = mg.train(config, output_dir=folder / config["name"], console=quiet)
    public = runs[math.inf]
    rows = []
    for epsilon, run in runs.items():
        accuracy = run.metrics["test"]["accuracy"]
        rows.append(
            {
                "task": task,
                "rows": len(pd.read_csv(csv)),
                "epsilon": epsilon if math.isfinite(epsilon) else "inf",
                "epsilon_spent": run.metrics.get("privacy", {}).get("epsilon"),
                "test_accuracy": round(accuracy, 4),
                "accuracy_vs_non_private": round(accuracy / public.metrics["test"]["accuracy"], 3),
                "epoch_seconds": round(float(np.median(epoch_seconds(run))), 3),
            }
        )
    return rows


def overfit_audit(frame: pd.DataFrame, folder: Path, rows: int, epochs: int) -> dict[str, Any]:
    """Audit AUCs of a small table trained long, without privacy and at epsilon 3."""
    csv = folder / "overfit.csv"
    frame.head(rows).to_csv(csv, index=False)
    found: dict[str, Any] = {"task": "audit", "rows": rows, "epochs": epochs}
    for epsilon in (3.0, math.inf):
        config = config_for("table", csv, epochs, epsilon)
        config["train"].update(batch_size=64, optimizer={"name": "adam", "lr": 0.003})
        config["model"]["hidden"] = [256, 256]
        config["data"]["split"] = {"val": 0.0, "test": 0.5}
        quiet = Console(stderr=True, quiet=True)
        run = mg.train(config, output_dir=folder / f"overfit-{epsilon}", console=quiet)
        name = "private_eps3" if math.isfinite(epsilon) else "non_private"
        for result in audit_privacy(run, write=False):
            found[f"{name}_{result.attack}_auc"] = round(result.auc, 3)
            found[f"{name}_{result.attack}_tpr_at_1pct_fpr"] = round(result.tpr_at_1pct_fpr, 3)
        found[f"{name}_train_minus_test_accuracy"] = round(
            run.evaluate_tensors(_train_tensors(run))["accuracy"] - run.metrics["test"]["accuracy"],
            3,
        )
    return found


def _train_tensors(run: mg.Run) -> Any:
    table, splits = run.data_splits()
    return run.preprocessor.transform(splits["train"], base_dir=table.base_dir, origin="train")


def _load() -> float:
    """The 1-minute load average: how busy the machine was (the figures depend on it)."""
    return round(os.getloadavg()[0], 1)


TEXT_TASKS = {"docstrings": (700, 0), "docstrings2": (900, 16)}
"""Each text task's rows per package and how many of the largest packages it skips."""
TASKS = ("table", *TEXT_TASKS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Tiny: table task, eps 3 and inf.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--only", nargs="*", choices=[*TASKS, "audit"])
    parser.add_argument("--overfit-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2, help="Interleaved timing runs.")
    parser.add_argument("--timing-only", action="store_true", help="Skip accuracy against eps.")
    parser.add_argument("--no-timing", action="store_true", help="Skip the epoch-time runs.")
    parser.add_argument("--no-per-sample", action="store_true", help="Time ghost clipping only.")
    args = parser.parse_args()
    torch.manual_seed(0)
    default = ["table", "audit"] if args.quick else [*TASKS, "audit"]
    only = set(args.only or default)
    epsilons = (3.0, math.inf) if args.quick else EPSILONS
    epochs = 1 if args.quick else args.epochs
    machine = {"machine": platform.machine(), "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = table_task(400 if args.quick else 12_000)
        for task in TASKS:
            if task not in only:
                continue
            csv = folder / f"{task}.csv"
            (table if task == "table" else docstrings_task(*TEXT_TASKS[task])).to_csv(
                csv, index=False
            )
            if not args.timing_only:
                for row in accuracy_against_epsilon(task, csv, folder, epochs, epsilons):
                    print(json.dumps({**row, **machine, "load": _load()}), flush=True)
            if not args.no_timing:
                repeats = 1 if args.quick else args.repeats
                timing = epoch_time_ratio(task, csv, folder, repeats, not args.no_per_sample)
                print(json.dumps({**timing, **machine, "load": _load()}), flush=True)
        if "audit" in only:
            rows, audit_epochs = (200, 3) if args.quick else (args.overfit_rows, 60)
            print(json.dumps({**overfit_audit(table, folder, rows, audit_epochs), **machine}))


if __name__ == "__main__":
    main()
