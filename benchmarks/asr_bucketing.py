"""Length bucketing on spoken digit strings: the CPU time of a training epoch of the recognizer
`megalith init` writes, with batches padded to the longest clip (as before) and with bucketed
batches cut to their own longest clip (megalith.bucketing), in the same process.

Makes the digit strings with espeak-ng (as benchmarks/asr_digits.py), runs `megalith init` and
trains the written config for one step to fit its preprocessing, then times whole epochs of
training steps (forward, CTC loss, backward, AdamW step) on one thread, the two ways alternated,
and prints JSON: CPU seconds and wall seconds per epoch of each, their ratios, and the share of
computed samples that are padding. CPU time on one thread is what a loaded machine changes least;
the ratio is the figure to read.

    python benchmarks/asr_bucketing.py [--output-dir DIR] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import megalith as mg
from megalith.batching import shuffled_batches
from megalith.bucketing import Bucketing, epoch_order
from megalith.data.spoken_digit_strings import make_spoken_digit_strings
from megalith.models.asr import ctc_loss
from megalith.run_data import transform_split
from megalith.training.speech import speech_job


def prepared_run(work: Path) -> tuple[mg.Run, Any]:
    """(a run of init's config trained for one step, its train split as tensors)."""
    table = work / "data" / "strings.csv"
    if not table.is_file():
        make_spoken_digit_strings(work / "data", speakers=24, strings=30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    written = subprocess.run(
        [sys.executable, "-m", "megalith", "init", str(table), "--target", "text"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    (work / "init.yaml").write_text(written.stdout)
    overrides = ["train.max_steps=1", "train.baselines=false"]
    run = mg.train(work / "init.yaml", output_dir=work / "run", overrides=overrides)
    source, splits = run.data_splits()
    train = transform_split(run.config, run.preprocessor, splits["train"], source, "train")
    return run, train


def epoch_seconds(run: mg.Run, train: Any, bucketing: Bucketing | None, epoch: int) -> dict:
    """CPU and wall seconds of one epoch of training steps, and the padding share."""
    model, cfg = run.model, run.config.train
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = cfg.rows_per_batch
    order = bucketing.order(0, epoch, size) if bucketing else epoch_order(len(train), 0, epoch)
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in shuffled_batches(train, size, order, torch.device("cpu"), bucketing=bucketing):
        outputs = model(batch.inputs)
        loss = ctc_loss(outputs[model.name], batch.targets[model.name])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = args.output_dir or Path(tempfile.mkdtemp(prefix="megalith-asr-bucketing-"))
    run, train = prepared_run(work)
    torch.set_num_threads(1)
    job = speech_job(_job_stub(train), run.preprocessor)
    bucketing = job.bucketing
    assert bucketing is not None
    plain = Bucketing(bucketing.lengths, (), 0)  # measures padding only; batches are not cut
    size, width = run.config.train.rows_per_batch, train.inputs["audio"].shape[1]
    times: dict[str, list[dict]] = {"padded": [], "bucketed": []}
    for repeat in range(args.repeats):
        times["padded"].append(epoch_seconds(run, train, None, repeat))
        times["bucketed"].append(epoch_seconds(run, train, bucketing, repeat))
    mean = {
        way: {kind: sum(t[kind] for t in runs) / len(runs) for kind in ("cpu", "wall")}
        for way, runs in times.items()
    }
    result = {
        "rows": len(train),
        "batch_size": size,
        "seconds_per_epoch_one_thread": mean,
        "cpu_ratio_padded_to_bucketed": mean["padded"]["cpu"] / mean["bucketed"]["cpu"],
        "wall_ratio_padded_to_bucketed": mean["padded"]["wall"] / mean["bucketed"]["wall"],
        "padding_share": {
            "padded": 1 - float(bucketing.lengths.sum()) / (len(train) * width),
            "bucketed": bucketing.padding_share(bucketing.order(0, 0, size), size, width),
            "unsorted_but_cut": plain.padding_share(epoch_order(len(train), 0, 0), size, width),
        },
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))


def _job_stub(train: Any) -> Any:
    """The fields of a TrainJob that speech_job reads and replaces."""
    from megalith.training.loop import TrainConfig, TrainJob

    return TrainJob(None, [], [], train, None, TrainConfig(), 0, Path("."))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
