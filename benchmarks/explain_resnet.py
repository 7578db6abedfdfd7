"""Integrated Gradients on a ResNet-18-shaped model at 224 x 224: time and peak memory of one
image, and memory over many explanations in one process.

The model is the project's ResNet family with ResNet-18's shape (channels 64, 128, 256, 512;
two basic blocks per stage; the ImageNet stem at 224 x 224): trained one epoch on a few random
images, so its weights are close to their random initialisation (the cost of IG does not depend
on what the weights learned). Each measurement runs in a fresh process, so that the peak resident
memory (ru_maxrss) is that measurement's:
  - `ig`: Megalith's Integrated Gradients alone (50 steps, steps raised until the completeness gap
    is within 5%, the automatic internal batch size) on one image;
  - `explain`: `run.explain(rows=1)`, everything: IG, the deletion check, the model-randomisation
    check (a second IG of the same image);
  - `repeat`: `run.explain(rows=1)` on 16x16 images (a small ResNet) many times; resident memory
    after the first 20 (half of them, for fewer than 40) and after the last.
Prints one JSON object.

    python benchmarks/explain_resnet.py [--explanations 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import megalith as mg

RESNET_18 = {"arch": "resnet", "channels": [64, 128, 256, 512], "blocks": [2, 2, 2, 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--explanations", type=int, default=200, help="Repeat count.")
    parser.add_argument("--measure", choices=["ig", "explain", "repeat"], help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(_measure(args.measure, args.run, args.explanations)), flush=True)
        return
    with tempfile.TemporaryDirectory() as folder:
        large = train_image_run(Path(folder) / "large", side=224, model=RESNET_18)
        small = train_image_run(
            Path(folder) / "small",
            side=16,
            model={"arch": "resnet", "channels": [8, 16], "blocks": [1, 1]},
        )
        found = {
            "model": "resnet-18 shape, 224 x 224 x 3, near its random initialisation",
            "ig": _in_fresh_process("ig", large, args.explanations),
            "explain": _in_fresh_process("explain", large, args.explanations),
            "repeat": _in_fresh_process("repeat", small, args.explanations),
            "threads": torch.get_num_threads(),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        }
        print(json.dumps(found), flush=True)


def train_image_run(folder: Path, side: int, model: dict[str, Any], count: int = 6) -> Path:
    """A run of `model` trained one epoch on `count` random colour images per class."""
    rng = np.random.default_rng(0)
    for kind in ("a", "b"):
        (folder / "images" / kind).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (side, side, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / "images" / kind / f"{i}.png")
    config = {
        "data": {"source": str(folder / "images"), "split": {"val": 0.17, "test": 0.17}},
        "inputs": [{"name": "image", "type": "image", "channels": 3}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": model,
        "train": {"epochs": 1, "batch_size": 4, "baselines": False},
    }
    mg.train(config, output_dir=folder / "run")
    return folder / "run"


def _in_fresh_process(measure: str, run: Path, explanations: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", measure, "--run", str(run)]
    command += ["--explanations", str(explanations)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def _measure(measure: str, path: Path, explanations: int) -> dict[str, Any]:
    run = mg.load(path)
    table, splits = run.data_splits()
    frame = splits["test"].iloc[:1]
    frame.attrs["base_dir"] = table.base_dir
    before = _resident_mb()
    started = time.perf_counter()
    if measure == "ig":
        found = _ig_alone(run, frame)
    elif measure == "explain":
        summary = run.explain(frame, rows=1, base_dir=frame.attrs["base_dir"]).summary
        found = {"internal_batch_size": summary["internal_batch_size"], "trust": summary["trust"]}
    else:
        return _repeat(run, frame, explanations)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "resident_mb_before": round(before),
        "peak_resident_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **found,
    }


def _ig_alone(run: mg.Run, frame: Any) -> dict[str, Any]:
    from megalith.explain.methods import attribute, automatic_batch_size
    from megalith.explain.space import AttributedModel, input_spaces

    specs, output = run.preprocessor.input_specs, run.preprocessor.output_specs[0]
    model = run.model.eval()
    encoded = run.preprocessor.encode_inputs(frame, base_dir=frame.attrs["base_dir"], origin="t")
    spaces = input_spaces(model, specs, encoded)  # type: ignore[arg-type]
    forward = AttributedModel(model, specs, output).eval()  # type: ignore[arg-type]
    target = torch.zeros(1, dtype=torch.long)
    size = automatic_batch_size(forward, spaces, target)
    found = attribute("ig", forward, spaces, target, steps=50, internal_batch_size=size)
    assert found.steps is not None and found.gap is not None
    return {"internal_batch_size": size, "steps": int(found.steps[0]), "gap": float(found.gap[0])}


def _repeat(run: mg.Run, frame: Any, explanations: int) -> dict[str, Any]:
    resident = []
    started = time.perf_counter()
    for _ in range(explanations):
        run.explain(frame, rows=1, base_dir=frame.attrs["base_dir"])
        resident.append(_resident_mb())
    return {
        "explanations": explanations,
        "seconds": round(time.perf_counter() - started, 2),
        "first": max(1, min(20, explanations // 2)),
        "resident_mb_after_first": round(resident[max(1, min(20, explanations // 2)) - 1], 1),
        "resident_mb_after_last": round(resident[-1], 1),
    }


def _resident_mb() -> float:
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


if __name__ == "__main__":
    main()
