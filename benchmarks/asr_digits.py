"""Spoken digit strings by voices never heard in training: the WER of the config `megalith init`
writes, its training time, and (for contrast) the WER after its first epoch.

Makes the digit strings with espeak-ng (megalith.data.spoken_digit_strings: 24 synthetic voices x
30 strings of 3-7 digits at 8 kHz; 4 voices for test and 2 for validation, none heard in
training), runs `megalith init TABLE --target text` and `megalith train` on what it writes (in a
subprocess, as a user would), and prints JSON: test WER and CER from eval.json, the validation
WER after epoch 1 and at the end (metrics.jsonl), the training wall time and the training
process's CPU time, and the load average of the machine while it ran (on a shared machine the
wall time is the load's as much as the model's: CPU seconds / 2 estimates the wall time on 2 idle
cores).

The issue's goal: on recorded 3-7 digit strings by unheard speakers at 8 kHz, WER <= 10% with
training <= 10 minutes on 2 CPU cores (an MFCC + SVM digit classifier told the word boundaries
gets ~13% of the words wrong).

    python benchmarks/asr_digits.py [--output-dir DIR] [--speakers 24] [--strings 30] [--set K=V]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from megalith.data.spoken_digit_strings import make_spoken_digit_strings


def run_init_config(table: Path, work: Path, overrides: list[str]) -> dict[str, Any]:
    """`megalith init` then `megalith train` in subprocesses; scores from the run directory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    written = subprocess.run(
        [sys.executable, "-m", "megalith", "init", str(table), "--target", "text"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    config = work / "init.yaml"
    config.write_text(written.stdout)
    sets = [item for pair in overrides for item in ("--set", pair)]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "megalith", "train", str(config), "--output-dir",
         str(work / "run"), "--overwrite", "--set", f"data.source={table}", *sets],
        check=True, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    scores = json.loads((work / "run" / "eval.json").read_text())
    epochs = [
        record
        for line in (work / "run" / "metrics.jsonl").read_text().splitlines()
        if "val/wer" in (record := json.loads(line))
    ]
    return {
        "config": {"model": _model_line(config), "overrides": overrides},
        "test_wer": scores["test"]["wer"],
        "test_cer": scores["test"]["cer"],
        "val_wer_epoch_1": epochs[0]["val/wer"] if epochs else None,
        "val_wer_last": epochs[-1]["val/wer"] if epochs else None,
        "epochs": scores["training"]["epochs"],
        "train_seconds_in_loop": scores["training"]["seconds"],
        "train_command_wall_seconds": round(wall, 1),
        "train_command_cpu_seconds": round(cpu, 1),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }


def _model_line(config: Path) -> str:
    lines = config.read_text().splitlines()
    return next((line for line in lines if line.startswith("model:")), "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--speakers", type=int, default=24)
    parser.add_argument("--strings", type=int, default=30)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    work = args.output_dir or Path(tempfile.mkdtemp(prefix="megalith-asr-bench-"))
    table = work / "data" / "strings.csv"
    if not table.is_file():
        start = time.perf_counter()
        make_spoken_digit_strings(work / "data", speakers=args.speakers, strings=args.strings)
        print(f"synthesised in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    result = run_init_config(table.resolve(), work, args.overrides)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    result["goal"] = {"wer_at_most": 0.10, "train_seconds_at_most": 600}
    result["wer_ratio_epoch_1_to_final"] = (
        result["val_wer_epoch_1"] / max(result["val_wer_last"], 1e-9)
        if result["val_wer_epoch_1"] is not None
        else None
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
