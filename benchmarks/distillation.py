"""Does distillation pay? A half-width student trained with its teacher vs without, same epochs.

For each task a teacher is trained once; then the student built by
`megalith.compress.distill.student_config` (every width halved, layers kept, the teacher's split)
is trained for the same epochs with the teacher (`teacher:` set, the default alpha and
temperature unless given) and without it, for each seed (the seed moves the initialisation
and the batch order; the split stays the teacher's). Prints one JSON object per task: the test
metric's mean and sd over seeds for each, the difference and the ratio distilled / plain, and
how many seeds the distilled student won; then one line naming the machine.

Tasks (offline, shipped with the package):
  digits      builtin:digits, 8x8 images, the CNN of examples/digits.yaml (10 classes)
  docstrings  builtin:docstrings, ~3,500 docstrings of the standard library, a bag-of-words
              text classifier (16 classes)

    python benchmarks/distillation.py                     # ~10 minutes on a 2-core CPU
    python benchmarks/distillation.py --alpha 0.3 --temperature 4
    python benchmarks/distillation.py --quick             # seconds: checks the code runs
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
            "model": {"arch": "mlp", "hidden": [128], "dropout": 0.1},
            "train": {
                "epochs": 10,
                "batch_size": 64,
                "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
            },
        },
        "teacher_epochs": 10,
        "student_epochs": 4,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="digits,docstrings", help="Comma-separated tasks.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--alpha", type=float, default=None, help="Default: the config's.")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="One epoch each, seed 0 only.")
    args = parser.parse_args()
    seeds = [0] if args.quick else args.seeds
    distill = {
        key: value
        for key, value in (("alpha", args.alpha), ("temperature", args.temperature))
        if value is not None
    }
    with tempfile.TemporaryDirectory() as folder:
        for name in args.tasks.split(","):
            result = _compare(name, TASKS[name], seeds, distill, Path(folder), args.quick)
            print(json.dumps(result), flush=True)
    print(json.dumps({"machine": _machine()}), flush=True)


def _compare(
    name: str,
    task: dict[str, Any],
    seeds: list[int],
    distill: dict[str, float],
    folder: Path,
    quick: bool,
) -> dict[str, Any]:
    quiet = _quiet_console()
    teacher_config = {**task["config"], "train": {**task["config"]["train"], "baselines": False}}
    teacher_config["train"]["epochs"] = 1 if quick else task["teacher_epochs"]
    teacher_config["train"].pop("early_stop", None)  # every run trains the epochs it is given
    teacher = mg.train(teacher_config, output_dir=folder / f"{name}-teacher", console=quiet)
    base = student_config(teacher, 0.5)
    base["train"]["epochs"] = 1 if quick else task["student_epochs"]
    metric = task["metric"]
    scores: dict[str, list[float]] = {"distilled": [], "plain": []}
    parameters = 0
    for seed in seeds:
        for kind in scores:
            config = {**base, "seed": seed}
            config["distill"] = distill or None
            if kind == "plain":
                config["teacher"], config["distill"] = None, None
            out = folder / f"{name}-{kind}-{seed}"
            run = mg.train(config, output_dir=out, console=quiet)
            scores[kind].append(float(run.metrics["test"][metric]))
            parameters = sum(p.numel() for p in run.model.parameters())
    distilled, plain = _summary(scores["distilled"]), _summary(scores["plain"])
    return {
        "task": name,
        "metric": f"test/{metric}",
        "seeds": seeds,
        "epochs": {
            "teacher": teacher_config["train"]["epochs"],
            "student": base["train"]["epochs"],
        },
        "distill": {"alpha": 0.5, "temperature": 2.0, **distill},
        "teacher": {
            metric: teacher.metrics["test"][metric],
            "parameters": sum(p.numel() for p in teacher.model.parameters()),
        },
        "student_parameters": parameters,
        "distilled": distilled,
        "plain": plain,
        "difference": distilled["mean"] - plain["mean"],
        "ratio": distilled["mean"] / plain["mean"] if plain["mean"] else None,
        "distilled_wins": sum(
            d > p for d, p in zip(scores["distilled"], scores["plain"], strict=True)
        ),
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
