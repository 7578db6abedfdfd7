"""Eager PyTorch against the exported ONNX bundle, per example model, at batch 1 and 32.

For each example config that exports (and a 2-layer Transformer text classifier), it trains a
short run, exports it (the export itself checks parity on the test split), then times on the
same encoded test rows:
  - `model`: Megalith's eager forward (`forward_in_batches`, as predict runs it) against
    `session.run` of the bundle's ONNX Runtime session — the network alone;
  - `predict`: `Run.predict(frame)` against `Bundle.predict(frame)` — encoding and decoding too.
Prints one JSON object per (model, batch size): median milliseconds per call of each, the ratio
eager / ONNX (above 1: ONNX Runtime is faster), and the export's parity figures.

    python benchmarks/export_speed.py [--calls 200] [--only digits breast_cancer]
    python benchmarks/export_speed.py --tiny     # one epoch, a few calls: checks the code runs
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml
from loop_overhead import WORKLOADS as TRAINED  # the loop benchmark's models

import megalith as mg
from megalith.batching import forward_in_batches
from megalith.runtime import load_bundle

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = ["digits", "digits_resnet", "breast_cancer", "diabetes_regression"]
TEXT_TRANSFORMER: Any = TRAINED["text-transformer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="Timed calls per measurement.")
    choices = [*EXAMPLES, "text_transformer"]
    parser.add_argument("--only", nargs="+", choices=choices, default=choices)
    parser.add_argument("--tiny", action="store_true", help="One epoch and a few calls.")
    args = parser.parse_args()
    calls = 5 if args.tiny else args.calls
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only:
            run = _train(name, Path(folder), args.tiny)
            bundle_path = run.export(Path(folder) / f"{name}-bundle")
            for row in _measure(name, run, bundle_path, calls):
                print(json.dumps(row), flush=True)
    print(json.dumps({"machine": _machine()}), flush=True)


def _train(name: str, folder: Path, tiny: bool) -> mg.Run:
    if name == "text_transformer":
        config: dict[str, Any] = json.loads(json.dumps(TEXT_TRANSFORMER))
        config["name"], config["train"]["epochs"] = "text-transformer", 2
    else:
        config = yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())
    overrides = ["train.epochs=1"] if tiny else []
    if name == "digits_resnet" and not tiny:
        overrides = ["train.epochs=3"]
    return mg.train(config, output_dir=folder / name, overrides=overrides)


def _measure(name: str, run: mg.Run, bundle_path: Path, calls: int) -> list[dict[str, Any]]:
    bundle = load_bundle(bundle_path)
    _, splits = run.data_splits()
    inputs = [f.name for f in run.config.inputs]
    frame = splits["test"][inputs]
    table = run.preprocessor.transform(frame, base_dir=None, origin="test", with_targets=False)
    arrays = run.preprocessor.encode_inputs(frame, base_dir=None, origin="test")
    ordered = [arrays[spec.name] for spec in run.preprocessor.input_specs]
    verified = json.loads((bundle_path / "bundle.json").read_text()).get("verified")
    cpu = torch.device("cpu")
    rows = []
    for batch in (1, 32):
        part = table.select(torch.arange(min(batch, len(table))))
        pieces = [a[:batch] for a in ordered]
        head = frame.head(batch)
        with torch.inference_mode():
            eager = _median_ms(
                partial(forward_in_batches, run.model, part, batch, cpu, None), calls
            )
        onnx = _median_ms(partial(bundle.run_graph, pieces, batch), calls)
        eager_predict = _median_ms(partial(run.predict, head), max(calls // 4, 3))
        onnx_predict = _median_ms(partial(bundle.predict, head), max(calls // 4, 3))
        rows.append(
            {
                "model": name,
                "batch": batch,
                "eager_ms": eager,
                "onnx_ms": onnx,
                "ratio_model": round(eager / onnx, 2),
                "eager_predict_ms": eager_predict,
                "onnx_predict_ms": onnx_predict,
                "ratio_predict": round(eager_predict / onnx_predict, 2),
                "verified": verified,
            }
        )
    return rows


def _median_ms(call: Callable[[], object], calls: int) -> float:
    for _ in range(min(10, calls)):  # warm-up
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 4)


def _machine() -> dict[str, Any]:
    import onnxruntime

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    main()
