"""Does distillation pay? A half-width student trained with its teacher vs without, same epochs.

For each task a teacher is trained once, as its config says (early stopping on val/loss, the
best epoch's weights kept); then the student built by `megalith.compress.distill.student_config`
(every width halved, layers kept, the teacher's split) is trained for the same fixed epochs
(no early stopping) without the teacher and, for each distillation setting, with it, for each
seed (the seed moves the initialisation and the batch order; the split stays the teacher's).
Prints one JSON object per task: the test metric's mean and sd over seeds of the plain student
and, per setting, of the distilled one, the difference and the ratio distilled / plain, and how
many seeds the distilled student won; then one line naming the machine.

Tasks (offline, shipped with the package):
  digits      builtin:digits, 8x8 images, the CNN of examples/digits.yaml (10 classes)
  docstrings  builtin:docstrings, ~3,500 docstrings of the standard library, the bag-of-words
              text classifier `megalith init` writes for it (16 classes, docs/text.md)
  shapes      2,000 rendered 32x32 RGB images of ten shapes over noise (benchmarks/pruning.py's
              generator, 200 per class, seed 0), a CNN 32/64/128 + dense 128: classes that
              look alike (circle / ring / dots, hbar / vbar / cross), so the teacher's soft
              outputs carry more than the labels

    python benchmarks/distillation.py                        # 34 min on 2 cores at load avg 15-19
    python benchmarks/distillation.py --settings 0.5:2 0.3:4 # alpha:temperature pairs
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
}
SHAPES_PER_CLASS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks", default="digits,docstrings,shapes", help="Comma-separated tasks."
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["0.5:2", "0.1:4"],
        help="Distillation settings alpha:temperature (the first is the default config's).",
    )
    parser.add_argument("--quick", action="store_true", help="One epoch each, seed 0 only.")
    args = parser.parse_args()
    seeds = [0] if args.quick else args.seeds
    settings = [tuple(float(x) for x in pair.split(":")) for pair in args.settings]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.tasks.split(","):
            result = _compare(name, TASKS[name], seeds, settings, Path(folder), args.quick)
            print(json.dumps(result), flush=True)
    print(json.dumps({"machine": _machine()}), flush=True)


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
    if teacher_config["data"]["source"] == "shapes":  # rendered here, offline
        try:
            from benchmarks.pruning import write_shapes
        except ModuleNotFoundError:  # run as a script: its own folder is on sys.path
            from pruning import write_shapes  # type: ignore[no-redef]

        images = write_shapes(folder / "shapes", 12 if quick else SHAPES_PER_CLASS)
        teacher_config["data"] = {**teacher_config["data"], "source": str(images)}
    teacher_config["train"]["epochs"] = 1 if quick else task["teacher_epochs"]
    teacher = mg.train(teacher_config, output_dir=folder / f"{name}-teacher", console=quiet)
    base = student_config(teacher, 0.5)
    base["train"]["epochs"] = 1 if quick else task["student_epochs"]
    base["train"]["early_stop"] = None  # every student trains the same epochs
    metric = task["metric"]

    def scores(teacher_path: str | None, distill: dict[str, float] | None) -> list[float]:
        values = []
        for seed in seeds:
            config = {**base, "seed": seed, "teacher": teacher_path, "distill": distill}
            kind = f"{distill['alpha']}-{distill['temperature']}" if distill else "plain"
            run = mg.train(config, output_dir=folder / f"{name}-{kind}-{seed}", console=quiet)
            values.append(float(run.metrics["test"][metric]))
        return values

    plain_values = scores(None, None)
    plain = _summary(plain_values)
    distilled = []
    for alpha, temperature in settings:
        values = scores(base["teacher"], {"alpha": alpha, "temperature": temperature})
        summary = _summary(values)
        distilled.append(
            {
                "alpha": alpha,
                "temperature": temperature,
                **summary,
                "difference": summary["mean"] - plain["mean"],
                "ratio": summary["mean"] / plain["mean"] if plain["mean"] else None,
                "wins": sum(d > p for d, p in zip(values, plain_values, strict=True)),
            }
        )
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
            "parameters": sum(p.numel() for p in teacher.model.parameters()),
        },
        "student_parameters": sum(p.numel() for p in student.model.parameters()),
        "plain": plain,
        "distilled": distilled,
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
