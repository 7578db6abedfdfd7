"""Does distillation pay? A half-width student trained with its teacher vs without, same epochs.

For each task a teacher is trained once, as its config says (early stopping on val/loss, the
best epoch's weights kept); then the student built by `megalith.compress.distill.student_config`
(every width halved, or scaled by --width; layers kept, the teacher's split) is trained for
the same fixed epochs (no early stopping) without the teacher and, for each distillation
setting, with it, for each seed (the seed moves the initialisation and the batch order; the
split stays the teacher's).
Prints one JSON object per task: the test metric's mean and sd over seeds of the plain student
and, per setting, of the distilled one, the difference and the ratio distilled / plain, how
many seeds the distilled student won, the same on the validation split, and the setting the
validation split chooses (`chosen_on_val`: settings are compared on val, never on test); then
one line naming the machine.

Tasks (offline, shipped with the package or generated here):
  digits      builtin:digits, 8x8 images, the CNN of examples/digits.yaml (10 classes)
  docstrings  builtin:docstrings, ~3,500 docstrings of the standard library, the bag-of-words
              text classifier `megalith init` writes for it (16 classes, docs/text.md)
  docstrings2 the same model on benchmarks/privacy.py's second text task: up to 900 docstrings
              of each of the 16 installed packages after the 16 largest (other texts, other
              labels; it depends on what is installed)
  shapes      2,000 rendered 32x32 RGB images of ten shapes over noise (benchmarks/pruning.py's
              generator, 200 per class, seed 0), a CNN 32/64/128 + dense 128: classes that
              look alike (circle / ring / dots, hbar / vbar / cross), so the teacher's soft
              outputs carry more than the labels
  noisy       6,000 rows of a planted-structure table (20 numbers, 8 classes) with 30% of the
              labels replaced by random classes; an MLP 256/256 teacher stopped early on
              val/loss, students 20 epochs: the teacher's soft outputs denoise the targets

    python benchmarks/distillation.py                        # digits, docstrings, shapes
    python benchmarks/distillation.py --tasks docstrings2,noisy  # 19 min at load avg 10-14
    python benchmarks/distillation.py --grid --tasks noisy   # alpha 0.1/0.5/0.9 x T 1/2/4
    python benchmarks/distillation.py --settings 0.5:2 0.3:4 # alpha:temperature pairs
    python benchmarks/distillation.py --tasks shapes --width 0.25  # a quarter-width student
    python benchmarks/distillation.py --quick                # seconds: checks the code runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

import megalith as mg
from megalith.compress.distill import student_config

REPO = Path(__file__).resolve().parents[1]

TASKS: dict[str, dict[str, Any]] = {
    "digits": {
        "metric": "accuracy",
        "config": yaml.safe_load((REPO / "examples" / "digits.yaml").read_text()),
        "teacher_epochs": 20,
        "student_epochs": 6,
    },
    "docstrings": {
        "metric": "accuracy",
        "config": {
            "name": "docstrings",
            "seed": 0,
            "data": {"source": "builtin:docstrings", "split": {"val": 0.1, "test": 0.2}},
            "inputs": [
                {
                    "name": "text",
                    "type": "text",
                    "tokenizer": "word",
                    "ngrams": 2,
                    "vocab_size": 50000,
                    "embedding_dim": 256,
                }
            ],
            "outputs": [{"name": "module", "type": "category"}],
            "model": {"arch": "mlp", "hidden": [], "dropout": 0.1},
            "train": {
                "epochs": 10,
                "batch_size": 64,
                "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
                "early_stop": {"metric": "val/loss", "patience": 3},
            },
        },
        "teacher_epochs": 10,
        "student_epochs": 4,
    },
    "shapes": {
        "metric": "accuracy",
        "config": {
            "name": "shapes",
            "seed": 0,
            "data": {"source": "shapes", "split": {"val": 0.1, "test": 0.2}},
            "inputs": [{"name": "image", "type": "image"}],
            "outputs": [{"name": "label", "type": "category"}],
            "model": {"arch": "cnn", "channels": [32, 64, 128], "hidden": [128]},
            "train": {
                "epochs": 12,
                "batch_size": 64,
                "optimizer": {"name": "adamw", "lr": 0.003},
                # cosine decay to 0: at a constant 3e-3 the last epoch's accuracy of these
                # batch-normed CNNs swung by 20-40 points between seeds (0.45-0.92)
                "schedule": {"name": "cosine"},
                "early_stop": {"metric": "val/loss", "patience": 3},
            },
        },
        "teacher_epochs": 12,
        "student_epochs": 4,
    },
    "noisy": {
        "metric": "accuracy",
        "config": {
            "name": "noisy",
            "seed": 0,
            "data": {"source": "noisy", "split": {"val": 0.1, "test": 0.2}},
            "inputs": [{"name": f"f{i}", "type": "number"} for i in range(20)],
            "outputs": [{"name": "label", "type": "category"}],
            "model": {"arch": "mlp", "hidden": [256, 256], "dropout": 0.1},
            "train": {
                "epochs": 30,
                "batch_size": 64,
                "optimizer": {"name": "adamw", "lr": 0.003},
                "early_stop": {"metric": "val/loss", "patience": 3},
            },
        },
        "teacher_epochs": 30,
        "student_epochs": 20,
    },
}
TASKS["docstrings2"] = {
    **TASKS["docstrings"],
    "config": {
        **TASKS["docstrings"]["config"],
        "name": "docstrings2",
        "data": {"source": "docstrings2", "split": {"val": 0.1, "test": 0.2}},
    },
}
SHAPES_PER_CLASS = 200
NOISY_ROWS, NOISY_FLIPPED = 6000, 0.3
"""The noisy table's rows and the share of them whose label is replaced by a random class."""
DOCSTRINGS2 = (900, 16)
"""benchmarks/privacy.py's second text task: at most 900 docstrings of each of the 16
installed packages that follow the 16 largest."""
HINTON_GRID = [f"{a}:{t}" for a in (0.1, 0.5, 0.9) for t in (1, 2, 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks", default="digits,docstrings,shapes", help=f"Comma-separated: {', '.join(TASKS)}."
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["0.5:2", "0.1:4"],
        help="Distillation settings alpha:temperature (the first is the default config's).",
    )
    parser.add_argument(
        "--grid", action="store_true", help="Hinton et al.'s grid: alpha 0.1/0.5/0.9 x T 1/2/4."
    )
    parser.add_argument(
        "--width", type=float, default=0.5, help="The student's widths over the teacher's."
    )
    parser.add_argument("--student-epochs", type=int, help="Instead of the task's own.")
    parser.add_argument("--quick", action="store_true", help="One epoch each, seed 0 only.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [0] if args.quick else args.seeds
    pairs = HINTON_GRID if args.grid else args.settings
    settings = [tuple(float(x) for x in pair.split(":")) for pair in pairs]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.tasks.split(","):
            task = {**TASKS[name], "width": args.width}
            task["student_epochs"] = args.student_epochs or task["student_epochs"]
            result = _compare(name, task, seeds, settings, Path(folder), args.quick)
            print(json.dumps(result), flush=True)
    print(json.dumps({"machine": _machine()}), flush=True)


def _source(source: str, folder: Path, quick: bool) -> str:
    """The task's data source: builtin ones as they are, the others written under `folder`."""
    if source == "shapes":  # rendered here, offline
        try:
            from benchmarks.pruning import write_shapes
        except ModuleNotFoundError:  # run as a script: its own folder is on sys.path
            from pruning import write_shapes  # type: ignore[no-redef]

        return str(write_shapes(folder / "shapes", 12 if quick else SHAPES_PER_CLASS))
    if source == "noisy":
        path = folder / "noisy.csv"
        noisy_table(300 if quick else NOISY_ROWS, NOISY_FLIPPED).to_csv(path, index=False)
        return str(path)
    if source == "docstrings2":
        try:
            from benchmarks.privacy import docstrings_task
        except ModuleNotFoundError:
            from privacy import docstrings_task  # type: ignore[no-redef]

        path = folder / "docstrings2.csv"
        docstrings_task(40 if quick else DOCSTRINGS2[0], DOCSTRINGS2[1]).to_csv(path, index=False)
        return str(path)
    return source


def noisy_table(rows: int, flipped: float) -> pd.DataFrame:
    """A planted-structure table (20 numeric features, 10 informative, 8 classes) whose label
    is replaced by a uniformly drawn class in a `flipped` share of the rows (in every split):
    the classic setting where a teacher's soft outputs denoise the targets."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows,
        n_features=20,
        n_informative=10,
        n_classes=8,
        n_clusters_per_class=1,
        flip_y=0.0,
        random_state=0,
    )
    rng = np.random.default_rng(0)
    noisy = rng.random(rows) < flipped
    y = np.where(noisy, rng.integers(0, 8, rows), y)
    frame = pd.DataFrame(x.round(4), columns=[f"f{i}" for i in range(20)])
    frame["label"] = [f"c{v}" for v in y]
    return frame


def _compare(
    name: str,
    task: dict[str, Any],
    seeds: list[int],
    settings: list[tuple[float, ...]],
    folder: Path,
    quick: bool,
) -> dict[str, Any]:
    quiet = _quiet_console()
    teacher_config = {**task["config"], "train": {**task["config"]["train"], "baselines": False}}
    source = _source(teacher_config["data"]["source"], folder, quick)
    teacher_config["data"] = {**teacher_config["data"], "source": source}
    teacher_config["train"]["epochs"] = 1 if quick else task["teacher_epochs"]
    teacher = mg.train(teacher_config, output_dir=folder / f"{name}-teacher", console=quiet)
    base = student_config(teacher, task.get("width", 0.5))
    base["train"]["epochs"] = 1 if quick else task["student_epochs"]
    base["train"]["early_stop"] = None  # every student trains the same epochs
    metric = task["metric"]

    def scores(teacher_path: str | None, distill: dict[str, float] | None) -> dict[str, list]:
        values: dict[str, list[float]] = {"val": [], "test": []}
        for seed in seeds:
            config = {**base, "seed": seed, "teacher": teacher_path, "distill": distill}
            kind = f"{distill['alpha']}-{distill['temperature']}" if distill else "plain"
            run = mg.train(config, output_dir=folder / f"{name}-{kind}-{seed}", console=quiet)
            for split in values:
                values[split].append(float(run.metrics[split][metric]))
        return values

    plain_values = scores(None, None)
    plain = {split: _summary(values) for split, values in plain_values.items()}
    distilled = []
    for alpha, temperature in settings:
        values = scores(base["teacher"], {"alpha": alpha, "temperature": temperature})
        distilled.append(
            {"alpha": alpha, "temperature": temperature, **_against(values, plain_values)}
        )
    chosen = max(distilled, key=lambda row: row["val"]["mean"])  # never on the test split
    student = mg.load(folder / f"{name}-plain-{seeds[0]}")
    return {
        "task": name,
        "metric": f"test/{metric}",
        "seeds": seeds,
        "epochs": {
            "teacher": teacher.metrics["training"]["epochs"],
            "student": base["train"]["epochs"],
        },
        "teacher": {
            metric: teacher.metrics["test"][metric],
            "val_" + metric: teacher.metrics["val"][metric],
            "parameters": sum(p.numel() for p in teacher.model.parameters()),
        },
        "student_parameters": sum(p.numel() for p in student.model.parameters()),
        "student_width": task.get("width", 0.5),
        "plain": {**plain["test"], "val": plain["val"]},
        "distilled": distilled,
        "chosen_on_val": {k: chosen[k] for k in ("alpha", "temperature", "difference", "wins")},
    }


def _against(values: dict[str, list[float]], plain: dict[str, list[float]]) -> dict[str, Any]:
    """One setting's test summary, its difference, ratio and seeds won against the plain
    student's, and the same summary and difference on the validation split."""
    summary, mean = _summary(values["test"]), statistics.fmean(plain["test"])
    return {
        **summary,
        "difference": summary["mean"] - mean,
        "ratio": summary["mean"] / mean if mean else None,
        "wins": sum(d > p for d, p in zip(values["test"], plain["test"], strict=True)),
        "val": _summary(values["val"]),
        "val_difference": statistics.fmean(values["val"]) - statistics.fmean(plain["val"]),
    }


def _summary(values: list[float]) -> dict[str, Any]:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "values": values}


def _quiet_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def _machine() -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": load,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    main()
