"""Predict latency of Megalith's CNNs on CPU: `forward_in_batches` (what predict and evaluate
run) against the same forward with torch's defaults, in the same process, alternating them.

Megalith puts convolution weights channels-last (`megalith.models.cnn.use_channels_last`);
torch's default keeps them contiguous (NCHW), as a model comes out of its constructor. Prints one
JSON object per workload and batch size: the median milliseconds of one predict call on that
many rows, and `speedup` = torch default / Megalith. The weights are random: latency does not
depend on their values.

    python benchmarks/predict_latency.py [--repeats 30] [--batches 1 32]
    python benchmarks/predict_latency.py --tiny   # twice each: checks the code runs

On a machine shared with other work, `--threads 1 --cpu-time` times this process's CPU time on
one thread, which time-slicing by other processes does not inflate.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from megalith.batching import forward_in_batches
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.models import CNNConfig, ResNetConfig, build_model

CPU = torch.device("cpu")
LABEL = [OutputSpec("label", "category", num_classes=10)]
WORKLOADS: dict[str, tuple[CNNConfig | ResNetConfig, InputSpec]] = {
    "digits-cnn": (
        CNNConfig(channels=[32, 64], hidden=[128]),
        InputSpec("image", "image", shape=(1, 8, 8)),
    ),
    "resnet-64": (  # as in loop_overhead.py
        ResNetConfig(channels=[16, 32, 64], blocks=[1, 1, 1]),
        InputSpec("image", "image", shape=(3, 64, 64)),
    ),
    "resnet18-64": (  # ResNet-18's stages on 64x64 RGB images
        ResNetConfig(channels=[64, 128, 256, 512], blocks=[2, 2, 2, 2]),
        InputSpec("image", "image", shape=(3, 64, 64)),
    ),
}


def torch_default_predict(model: torch.nn.Module, table: TensorTable, batch_size: int) -> None:
    """What forward_in_batches did before: eval mode, no autograd, weights as they are."""
    model.eval()
    with torch.inference_mode():
        pieces = []
        for start in range(0, len(table), batch_size):
            batch = table.select(torch.arange(start, min(start + batch_size, len(table))))
            pieces.append(model(batch.inputs)["label"].float())
        torch.cat(pieces)


def timed(run: Callable[[], object], times: list[float], clock: Callable[[], float]) -> None:
    """Run once and append the milliseconds it took."""
    start = clock()
    run()
    times.append((clock() - start) * 1000)


def measure(name: str, rows: int, repeats: int, cpu_time: bool) -> dict[str, object]:
    config, spec = WORKLOADS[name]
    torch.manual_seed(0)
    model = build_model(config, [spec], LABEL)
    ours = copy.deepcopy(model)
    pixels = torch.randint(0, 256, (rows, *spec.shape), dtype=torch.uint8)
    table = TensorTable({"image": pixels}, {}, np.arange(rows))
    calls = {
        "torch_default": lambda: torch_default_predict(model, table, rows),
        "megalith": lambda: forward_in_batches(ours, table, rows, CPU, None),
    }
    times: dict[str, list[float]] = {call: [] for call in calls}
    for run in calls.values():  # warm-up: the first call converts the weights once
        run()
    for _ in range(repeats):
        for call, run in calls.items():
            timed(run, times[call], time.process_time if cpu_time else time.perf_counter)
    before, after = (statistics.median(times[call]) for call in calls)
    return {
        "workload": name,
        "batch": rows,
        "torch_default_ms": round(before, 3),
        "megalith_ms": round(after, 3),
        "speedup": round(before / after, 2),
        "megalith_ms_range": [round(min(times["megalith"]), 3), round(max(times["megalith"]), 3)],
        "repeats": repeats,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "clock": "process cpu time" if cpu_time else "wall",
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), help="these workloads")
    parser.add_argument("--tiny", action="store_true", help="2 repeats: checks the code runs")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--cpu-time", action="store_true", help="time CPU, not wall, seconds")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in WORKLOADS:
        if args.only and name not in args.only:
            continue
        for rows in args.batches:
            row = measure(name, rows, 2 if args.tiny else args.repeats, args.cpu_time)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
