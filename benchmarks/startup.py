"""Start-up: `megalith --help`, and the time from `megalith train` to its first training step.

Each is compared with the floor a user cannot go below: `python -c pass` for --help, and a plain
script that imports torch, builds the same digits data and takes one optimizer step for train.
Prints JSON with the medians and the ratios, measured in the same run.

    python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PLAIN_FIRST_STEP = """
import torch, numpy as np
from sklearn.datasets import load_digits
digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
y = torch.tensor(digits.target)
model = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
    torch.nn.Flatten(), torch.nn.Linear(32 * 64, 10))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
loss = torch.nn.functional.cross_entropy(model(x[:64]), y[:64])
loss.backward(); optimizer.step()
print("first step", flush=True)
"""


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def until_first_step(folder: Path) -> float:
    """Seconds from starting `megalith train` to the first step line in metrics.jsonl."""
    run = folder / "run"
    start = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "megalith",
            "train",
            str(REPO / "examples" / "digits.yaml"),
            "-o",
            str(run),
            "--set",
            "train.log_every=1",
            "--set",
            "train.epochs=1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = run / "metrics.jsonl"
    while not (metrics.is_file() and metrics.stat().st_size > 0):
        if process.poll() is not None:
            raise RuntimeError("megalith train ended before its first step")
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    process.wait()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    python = [sys.executable, "-c", "pass"]
    helps, floors, firsts, plains = [], [], [], []
    for _ in range(args.repeats):
        helps.append(wall([sys.executable, "-m", "megalith", "--help"]))
        floors.append(wall(python))
        with tempfile.TemporaryDirectory() as folder:
            firsts.append(until_first_step(Path(folder)))
        plains.append(wall([sys.executable, "-c", PLAIN_FIRST_STEP]))
    median = statistics.median
    print(
        json.dumps(
            {
                "help_seconds": round(median(helps), 3),
                "python_seconds": round(median(floors), 3),
                "train_to_first_step_seconds": round(median(firsts), 3),
                "plain_script_first_step_seconds": round(median(plains), 3),
                "first_step_ratio": round(median(firsts) / median(plains), 2),
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
