"""int8 (and the distill -> prune -> int8 chain) against the original's fp32 ONNX bundle.

Each case trains a model briefly, runs `mg.compress` on it, and reports from its
compression.json (every latency measured in this one process, same ONNX Runtime threads):
  - text: a Transformer text classifier (6 layers x 512, ~23M parameters) on builtin:docstrings;
    goal: int8 >= 1.6x faster, >= 3.5x smaller, <= 1 point accuracy drop;
  - cnn: a CNN on 64x64 generated shape images (written with Pillow, offline); goal: static int8
    >= 2x faster at <= 1 point drop;
  - small: a 2-layer text model (bag of 64-d embeddings + 64 units), where int8 cannot pay: the
    gate should reject it, and the table says why;
  - chain: distill -> prune -> int8 on the text model (goal >= 4x smaller, >= 3x faster, <= 2
    points below the teacher), skipped with a message when those steps are not installed.
Prints one JSON object per case (ratios: fp32 / int8 latency at batch 1 and 32, fp32 graph MB /
int8 graph MB, accuracy drop in points = 0.01) and a last one naming the machine.

    python benchmarks/compression.py [--only text,cnn,small,chain] [--epochs N]
    python benchmarks/compression.py --quick --only small   # seconds: checks the code runs

Reductions that make the text cases fit a slow machine (the model's shape is kept):
  --rows N             a seeded random N of the ~3,500 docstrings (written to a scratch CSV),
                       split 70/10/20 as the full table is;
  --student-epochs N   chain: the distilled student's train.epochs (default: the teacher's);
  --finetune-epochs N  chain: fine-tuning epochs after pruning (default: a quarter of the
                       student's, at least 1).
--keep DIR writes the runs and compression folders (compression.json) under DIR, kept.
--retime-rounds N times every model's bundle again after the chain, round-robin (N rounds of 10
calls each), so that a change of the machine's load during the chain weighs on all alike.
The chain's teacher trains for --epochs (default 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from rich.console import Console

import megalith as mg
from megalith.compress import Compression
from megalith.compress.measure import machine

CASES = ("text", "cnn", "small", "chain")
QUIET = Console(quiet=True)


def text_config(quick: bool, epochs: int, source: str = "builtin:docstrings") -> dict[str, Any]:
    """A Transformer encoder on docstrings: 6 layers, 8 heads, 512-d (1 x 32-d when quick)."""
    layers, width = (1, 32) if quick else (6, 512)
    encoder = {"kind": "transformer", "layers": layers, "heads": 8 if not quick else 4}
    text = {"name": "text", "type": "text", "vocab_size": 8000, "max_length": 32,
            "embedding_dim": width, "encoder": encoder}  # fmt: skip
    return {
        "name": "docstrings-transformer",
        "data": {"source": source, "split": {"val": 0.1, "test": 0.2}},
        "inputs": [text],
        "outputs": [{"name": "module", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [width]},
        "train": {"epochs": epochs, "batch_size": 32, "baselines": False,
                  "optimizer": {"name": "adamw", "lr": 5e-4}},
    }  # fmt: skip


def small_config(epochs: int) -> dict[str, Any]:
    """The 2-layer text model: a bag of 64-d word embeddings, then 64 units."""
    text = {"name": "text", "type": "text", "vocab_size": 8000, "embedding_dim": 64}
    return {
        "name": "docstrings-small",
        "data": {"source": "builtin:docstrings", "split": {"val": 0.1, "test": 0.2}},
        "inputs": [text],
        "outputs": [{"name": "module", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [64]},
        "train": {"epochs": epochs, "batch_size": 32, "baselines": False,
                  "optimizer": {"name": "adamw", "lr": 3e-3}},
    }  # fmt: skip


def shapes_table(folder: Path, rows: int, size: int, seed: int = 0) -> Path:
    """`rows` RGB images of one of four shapes (random place, size, colours, noise), written
    as PNGs with a table of their paths and labels."""
    rng = np.random.default_rng(seed)
    labels = []
    for row in range(rows):
        shape = ("circle", "square", "triangle", "cross")[row % 4]
        image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 90, 3)))
        draw = ImageDraw.Draw(image)
        r = int(rng.integers(size // 6, size // 3))
        x, y = (int(v) for v in rng.integers(r, size - r, 2))
        colour = tuple(int(v) for v in rng.integers(120, 256, 3))
        if shape == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        elif shape == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=colour)
        elif shape == "triangle":
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
        else:
            draw.rectangle((x - r, y - r // 3, x + r, y + r // 3), fill=colour)
            draw.rectangle((x - r // 3, y - r, x + r // 3, y + r), fill=colour)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-20, 21, (size, size, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{row}.png")
        labels.append(shape)
    table = folder / "shapes.csv"
    pd.DataFrame({"image": [f"{r}.png" for r in range(rows)], "shape": labels}).to_csv(
        table, index=False
    )
    return table


def cnn_config(table: Path, quick: bool, epochs: int) -> dict[str, Any]:
    return {
        "name": "shapes-cnn",
        "data": {"source": str(table), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "image", "type": "image"}],
        "outputs": [{"name": "shape", "type": "category"}],
        "model": {"arch": "cnn", "channels": [8] if quick else [32, 64, 128], "hidden": [64]},
        "train": {"epochs": epochs, "batch_size": 32, "baselines": False,
                  "optimizer": {"name": "adamw", "lr": 2e-3}},
    }  # fmt: skip


def docstrings_source(folder: Path, rows: int | None, seed: int = 0) -> str:
    """builtin:docstrings, or a seeded random `rows` of it written as folder/docstrings.csv."""
    if rows is None:
        return "builtin:docstrings"
    from megalith.data.builtin import load_builtin

    table = load_builtin("docstrings")
    if not 0 < rows <= len(table):
        raise SystemExit(f"--rows {rows}: builtin:docstrings has {len(table)} rows")
    path = folder / "docstrings.csv"
    table.sample(n=rows, random_state=seed).to_csv(path, index=False)
    return str(path)


def ratios(result: Compression) -> dict[str, Any]:
    """The last model against the original: speed-ups against the fp32 bundle at batch 1 and
    32, fp32 graph MB / last graph MB, the accuracy drop in points, the verdicts."""
    models = result.models
    first, last = models[0], models[-1]
    metric = result.summary["watched"]["metric"]
    return {
        "steps": [m["name"] for m in models[1:]],
        "scheme": last["scheme"],
        "parameters": [m["parameters"] for m in models],
        "graph_mb": [m["bundle_mb"] for m in models],
        "macs": [m["macs"] for m in models],
        "latency_ms": [m["latency_ms"] for m in models],
        "metric": metric,
        "values": [round(m["metrics"][metric], 4) for m in models],
        "speedup_batch1": round(first["latency_ms"]["1"] / last["latency_ms"]["1"], 3),
        "speedup_batch32": round(first["latency_ms"]["32"] / last["latency_ms"]["32"], 3),
        "smaller": round(first["bundle_mb"] / last["bundle_mb"], 3),
        "drop_points": round((first["metrics"][metric] - last["metrics"][metric]) * 100, 3),
        "agreement": last["agreement"],
        "best": result.summary["best"],
        "verdicts": [
            {
                "model": m["name"],
                "accepted": m["verdict"]["accepted"],
                "reasons": m["verdict"]["reasons"],
            }
            for m in models[1:]
        ],
    }


def interleaved_latency(
    result: Compression, threads: int, rounds: int = 5, runs: int = 10
) -> dict[str, dict[str, float]]:
    """Every model's bundle of `result` timed again after the chain, round-robin: `rounds`
    rounds of `runs` calls per model and batch size (each after warm-up), the median of the
    round medians in ms. The chain times each model once, as it is made, minutes apart; on a
    shared machine whose load changes meanwhile, this weighs the load on every model alike."""
    from megalith.compress.measure import test_rows, time_bundle

    arrays = test_rows(mg.load(result.models[0]["path"])).arrays
    bundles = {m["name"]: result.path / m["bundle"] for m in result.models}
    timings: dict[str, list[dict[str, float]]] = {name: [] for name in bundles}
    for _ in range(rounds):
        for name, bundle in bundles.items():
            timings[name].append(time_bundle(bundle, arrays, threads=threads, runs=runs))
    return {
        name: {size: float(np.median([t[size] for t in times])) for size in times[0]}
        for name, times in timings.items()
    }


def interleaved_ratios(latency: dict[str, dict[str, float]], best: str) -> dict[str, Any]:
    """The interleaved latencies, and the original's / the best model's at each batch size."""
    first, chosen = latency["original"], latency[best]
    return {
        "interleaved_latency_ms": latency,
        "interleaved_speedup_best": {size: round(first[size] / chosen[size], 3) for size in first},
    }


def compress_case(
    case: str, config: dict, folder: Path, steps: list[str], args: argparse.Namespace, **kw: Any
) -> dict[str, Any]:
    run = mg.train(config, output_dir=folder / f"{case}-run", console=QUIET)
    result = mg.compress(run, steps, folder / f"{case}-compressed", timing_runs=args.runs,
                         threads=args.threads, console=QUIET, **kw)  # fmt: skip
    figures = {"case": case, "train_seconds": run.metrics["training"]["seconds"], **ratios(result)}
    if args.retime_rounds:
        latency = interleaved_latency(result, args.threads, args.retime_rounds)
        figures.update(interleaved_ratios(latency, result.summary["best"]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(CASES), help="Cases, comma-separated.")
    parser.add_argument("--epochs", type=int, default=None, help="Training epochs per case.")
    parser.add_argument("--runs", type=int, default=50, help="Timed runs per batch size.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="Tiny models, 1 epoch, 5 runs.")
    parser.add_argument("--rows", type=int, default=None, help="Docstrings rows (default all).")
    parser.add_argument("--student-epochs", type=int, default=None, help="chain: student's.")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="chain: after prune.")
    parser.add_argument("--keep", type=Path, default=None, help="Write runs here (kept).")
    parser.add_argument("--retime-rounds", type=int, default=0, help="Interleaved re-timing.")
    args = parser.parse_args()
    if args.quick:
        args.runs = 5
    cases = [c.strip() for c in args.only.split(",")]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"--only: unknown case(s) {', '.join(sorted(unknown))}")
    epochs = args.epochs or 1 if args.quick else args.epochs
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        source = docstrings_source(folder, args.rows)
        if "text" in cases:
            config = text_config(args.quick, epochs or 1, source)
            print(json.dumps(compress_case("text", config, folder, ["quantize"], args)), flush=True)
        if "cnn" in cases:
            images = folder / "shapes"
            images.mkdir()
            table = shapes_table(images, 160 if args.quick else 1600, 16 if args.quick else 64)
            config = cnn_config(table, args.quick, epochs or 4)
            print(json.dumps(compress_case("cnn", config, folder, ["quantize"], args)), flush=True)
        if "small" in cases:
            config = small_config(epochs or 5)
            print(
                json.dumps(compress_case("small", config, folder, ["quantize"], args)), flush=True
            )
        if "chain" in cases:
            print(json.dumps(chain_case(folder, args, epochs, source)), flush=True)
    print(json.dumps({"machine": machine(), "threads": args.threads, "runs": args.runs,
                      "load_average": os.getloadavg()}), flush=True)  # fmt: skip


def chain_case(
    folder: Path, args: argparse.Namespace, epochs: int | None, source: str
) -> dict[str, Any]:
    missing = [
        step for step in ("distill", "prune")
        if importlib.util.find_spec(f"megalith.compress.{step}") is None
    ]  # fmt: skip
    if missing:
        return {"case": "chain", "skipped": f"megalith.compress.{'/'.join(missing)} not here"}
    config = text_config(args.quick, epochs or 2, source)
    return compress_case("chain", config, folder, ["distill", "prune", "quantize"], args,
                         max_metric_drop=2.0, distill_epochs=args.student_epochs,
                         finetune_epochs=args.finetune_epochs)  # fmt: skip


if __name__ == "__main__":
    main()
