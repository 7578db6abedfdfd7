"""Structured pruning, measured: a CNN and a ResNet trained on rendered shapes, pruned to about
half their MACs, fine-tuned, and the models' fp32 ONNX bundles timed with ONNX Runtime.

The images (32x32 RGB, ten classes of shapes drawn with Pillow at random sizes, places, colours
and with noise) are generated offline into an image folder, large enough that the convolutions
are most of the cost. For each family it trains a run, prunes it with `prune_run` once per
scheme, exports the runs (`Run.export`, verified against PyTorch) and times `session.run` of
each bundle at batch 1 and 32 on the same encoded test rows, alternating original and pruned,
median of `--calls` runs each, in this one process and with the same threads. Prints one JSON
object per family, pruning scheme and thread count: parameters, model.safetensors MB, MACs per
image, latencies and their ratios (original / pruned: above 1 the pruned model is faster), test
accuracy before / after; then the machine. The schemes (`--schemes by:amount ...`) are
`macs:0.5` (the default of `megalith compress --prune`: half the MACs, widths in multiples of
16) and `channels:0.3` (0.3 of every layer's channels: also about half the MACs, odd widths).

    python benchmarks/pruning.py [--images 300] [--epochs 8] [--schemes macs:0.5] [--calls 100]
    python benchmarks/pruning.py --tiny    # few images, one epoch, a few calls: the code runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

import megalith as mg
from megalith.compress.prune import prune_run
from megalith.runtime import load_bundle

SHAPES = [
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "hbar",
    "vbar",
    "diamond",
    "dots",
    "x",
]
FAMILIES: dict[str, dict[str, Any]] = {
    "cnn": {"arch": "cnn", "channels": [32, 64, 128], "hidden": [128]},
    "resnet": {"arch": "resnet", "channels": [32, 64, 128], "blocks": [1, 1, 1]},
}
SIZE = 32


def draw_shape(kind: str, rng: np.random.Generator) -> Image.Image:
    """One SIZE x SIZE RGB image of `kind` at a random place, size and colour, over noise."""
    noise = rng.integers(0, 110, (SIZE, SIZE, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    pen = ImageDraw.Draw(image)
    r = int(rng.integers(4, 12))
    cx, cy = (int(v) for v in rng.integers(r + 1, SIZE - r - 1, 2))
    colour = tuple(int(v) for v in rng.integers(90, 256, 3))
    box = (cx - r, cy - r, cx + r, cy + r)
    width = max(2, r // 3)
    if kind == "circle":
        pen.ellipse(box, fill=colour)
    elif kind == "square":
        pen.rectangle(box, fill=colour)
    elif kind == "triangle":
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif kind == "cross":
        pen.rectangle((cx - width, cy - r, cx + width, cy + r), fill=colour)
        pen.rectangle((cx - r, cy - width, cx + r, cy + width), fill=colour)
    elif kind == "ring":
        pen.ellipse(box, outline=colour, width=width)
    elif kind == "hbar":
        pen.rectangle((cx - r, cy - width, cx + r, cy + width), fill=colour)
    elif kind == "vbar":
        pen.rectangle((cx - width, cy - r, cx + width, cy + r), fill=colour)
    elif kind == "diamond":
        pen.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    elif kind == "dots":
        d = max(2, r // 2)
        for sx in (-1, 1):
            pen.ellipse(
                (
                    cx + sx * d - d // 2 - 1,
                    cy - d // 2 - 1,
                    cx + sx * d + d // 2 + 1,
                    cy + d // 2 + 1,
                ),
                fill=colour,
            )
    else:  # x
        pen.line((cx - r, cy - r, cx + r, cy + r), fill=colour, width=width)
        pen.line((cx - r, cy + r, cx + r, cy - r), fill=colour, width=width)
    return image


def write_shapes(folder: Path, per_class: int, seed: int = 0) -> Path:
    """An image folder: one subfolder of PNGs per shape."""
    rng = np.random.default_rng(seed)
    for kind in SHAPES:
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            draw_shape(kind, rng).save(folder / kind / f"{index:04d}.png")
    return folder


def train_family(name: str, data: Path, folder: Path, epochs: int) -> mg.Run:
    config = {
        "name": f"shapes-{name}",
        "data": {"source": str(data), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "image", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": FAMILIES[name],
        "train": {
            "epochs": epochs,
            "batch_size": 64,
            "optimizer": {"name": "adamw", "lr": 3e-3},
            "baselines": False,
        },
    }
    return mg.train(config, output_dir=folder / name)


def _timer(bundle_path: Path, run: mg.Run, batch: int, threads: int | None) -> Callable[[], object]:
    bundle = load_bundle(bundle_path, threads=threads)
    table, splits = run.data_splits()
    frame = splits["test"][["image"]].head(batch)
    arrays = run.preprocessor.encode_inputs(frame, base_dir=table.base_dir, origin="test")
    pieces = [arrays[spec.name] for spec in run.preprocessor.input_specs]
    return lambda: bundle.run_graph(pieces, batch)


def median_ms(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms per call of each, the calls alternated so drift on the machine hits all."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(5):  # warm-up
            call()
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: round(statistics.median(values), 4) for name, values in times.items()}


def measure(
    name: str,
    original: mg.Run,
    pruned: mg.Run,
    folder: Path,
    repeats: int,
    threads: list[int],
) -> list[dict[str, Any]]:
    """One row per ONNX Runtime thread count (0: its default, one per core)."""
    bundles = {
        "original": folder / f"{name}-bundle",
        "pruned": pruned.export(pruned.path / "bundle"),
    }
    if not bundles["original"].is_dir():
        original.export(bundles["original"])
    record = json.loads((pruned.path / "pruning.json").read_text())
    row: dict[str, Any] = {
        "model": name,
        "scheme": {k: v for k, v in record["scheme"].items() if k != "allocation"},
        "amount": record["amount"],
        "finetune_epochs": record["finetune"]["epochs"],
        "parameters": record["parameters"],
        "macs_per_image": record["macs_per_row"],
        "macs_ratio": round(record["macs_per_row"]["after"] / record["macs_per_row"]["before"], 3),
        "weights_mb": {k: round(v / 1e6, 3) for k, v in record["weights_bytes"].items()},
        "test_accuracy": {
            "before": round(original.metrics["test"]["accuracy"], 4),
            "after": round(pruned.metrics["test"]["accuracy"], 4),
        },
    }
    drop = row["test_accuracy"]["before"] - row["test_accuracy"]["after"]
    row["accuracy_drop_points"] = round(100 * drop, 2)
    rows = []
    for count in threads:
        timed = {**row, "onnx_threads": count or "default"}
        for batch in (1, 32):
            timers = {
                k: _timer(path, original if k == "original" else pruned, batch, count or None)
                for k, path in bundles.items()
            }
            ms = median_ms(timers, repeats)
            timed[f"onnx_ms_batch{batch}"] = ms
            timed[f"speedup_batch{batch}"] = round(ms["original"] / ms["pruned"], 2)
        rows.append(timed)
    return rows


def machine() -> dict[str, Any]:
    import onnxruntime

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300, help="Images per class.")
    parser.add_argument("--epochs", type=int, default=8, help="Epochs of the original runs.")
    parser.add_argument(
        "--schemes", nargs="+", default=["macs:0.5", "channels:0.3"], help="by:amount pairs."
    )
    parser.add_argument("--finetune-epochs", type=int, default=None)
    parser.add_argument("--calls", type=int, default=100, help="Timed calls per measurement.")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="ORT threads; 0: its default."
    )
    parser.add_argument("--only", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--tiny", action="store_true", help="Few images, 1 epoch, few calls.")
    args = parser.parse_args()
    if args.tiny:
        args.images, args.epochs, args.calls = 12, 1, 5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = write_shapes(folder / "shapes", args.images)
        for name in args.only:
            original = train_family(name, data, folder, args.epochs)
            for scheme in args.schemes:
                by, amount = scheme.split(":")
                pruned = prune_run(
                    original,
                    folder / f"{name}-pruned-{by}",
                    amount=float(amount),
                    finetune_epochs=args.finetune_epochs,
                    by=by,
                )
                for row in measure(name, original, pruned, folder, args.calls, args.threads):
                    print(json.dumps(row), flush=True)
    print(json.dumps({"machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
