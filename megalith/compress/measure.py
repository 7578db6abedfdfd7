"""What each model of a compression is measured by: parameters, file size, MACs, latency of its
ONNX bundle in ONNX Runtime, and test metrics. The gates (megalith.compress.gates) only read the
`Measurement`s, so a test can hand them made-up ones.

Latency: the median of `runs` timed calls of the bundle's graph (after warm-up) at batch 1 and
32, on the first rows of the test split, in this process, with ONNX Runtime's intra-op threads
fixed (recorded), so every model of one compression is timed alike.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from megalith.runtime.bundle import INPUT_DTYPES

if TYPE_CHECKING:
    import torch

    from megalith.data.tensors import TensorTable
    from megalith.run import Run

BATCH_SIZES = (1, 32)
WARMUP_RUNS = 5


@dataclass
class Measurement:
    """One model of a compression, measured. Sizes in MB (10^6 bytes), latency in ms."""

    name: str
    """original, distill, prune, quantize, or a custom step's name."""
    kind: str
    """run (a run directory) or bundle (an ONNX bundle)."""
    path: str
    bundle: str
    """The bundle that was timed (the run's own export for a run)."""
    parameters: int
    size_mb: float
    """model.safetensors for a run, the .onnx graph for a bundle."""
    bundle_mb: float
    """The timed bundle's graph (model.onnx)."""
    macs: int | None
    """Multiply-accumulates of one row (batch 1): torch FLOPs / 2."""
    macs_note: str
    latency_ms: dict[str, float]
    """Median latency by batch size ("1", "32")."""
    metrics: dict[str, float]
    """Test-split loss and metrics, as `megalith evaluate` names them."""
    agreement: float | None = None
    """Fraction of test rows whose predicted label equals the original model's."""
    scheme: str | None = None
    """quantize: dynamic or static int8."""
    verdict: dict[str, Any] = field(default_factory=dict)
    """Filled by the gates: accepted, reasons, figures."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TestRows:
    """The test split, encoded once: tensors with targets, and the graph's numpy inputs."""

    tensors: TensorTable
    arrays: list[np.ndarray]


def test_rows(run: Run) -> TestRows:
    """The run's test split encoded (the val split when there is no test split).

    Raises:
        DataError: the split has no labelled rows.
    """
    from megalith.errors import DataError
    from megalith.run_data import transform_split

    table, splits = run.data_splits()
    split = "test" if len(splits.get("test", [])) else "val"
    frame = splits.get(split)
    if frame is None or len(frame) == 0:
        raise DataError(f"{table.origin}: no test or val rows to measure the models on")
    tensors = transform_split(run.config, run.preprocessor, frame, table, split)
    arrays = [
        tensors.inputs[spec.name].numpy().astype(INPUT_DTYPES[spec.type], copy=False)
        for spec in run.preprocessor.input_specs
    ]
    return TestRows(tensors, arrays)


def count_macs(run: Run, rows: TestRows) -> int:
    """Multiply-accumulates of the model on one test row, from torch's FLOP counter (FLOPs / 2;
    it counts matmuls and convolutions, the bulk of the work)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    batch = {name: tensor[:1] for name, tensor in rows.tensors.inputs.items()}
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        run.model(batch)
    return int(counter.get_total_flops() // 2)


def run_outputs_and_metrics(
    run: Run, rows: TestRows
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The run's raw test outputs and its test metrics, computed by PyTorch."""
    return run.forward_table(rows.tensors), run.evaluate_tensors(rows.tensors)


def bundle_outputs_and_metrics(
    bundle: Path, run: Run, rows: TestRows, threads: int
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """A bundle's raw test outputs (through megalith.runtime) and the same metrics as
    `megalith evaluate` computes from them (loss included)."""
    import torch

    from megalith.evaluate.metrics import compute_metrics
    from megalith.runtime import load_bundle
    from megalith.training.losses import class_weight_tensors, total_loss

    loaded = load_bundle(bundle, threads=threads)
    raw = loaded.run_graph(rows.arrays, batch_size=256)
    outputs = {name: torch.from_numpy(np.asarray(value)).float() for name, value in raw.items()}
    specs = run.preprocessor.output_specs
    targets = rows.tensors.targets
    loss = total_loss(
        run.config.outputs, outputs, targets, class_weights=class_weight_tensors(specs)
    )
    return outputs, {"loss": float(loss), **compute_metrics(specs, outputs, targets)}


def predicted_labels(run: Run, outputs: dict[str, torch.Tensor]) -> np.ndarray | None:
    """The first category / binary output's predicted labels (None for other outputs)."""
    import torch

    spec = run.preprocessor.output_specs[0]
    value = outputs[spec.name]
    if spec.type == "category":
        return value.argmax(-1).numpy()
    if spec.type == "binary":
        from megalith.data.features.binary import BinaryOutputEncoder
        from megalith.export.describe import binary_threshold

        encoder = run.preprocessor.outputs[0]
        assert isinstance(encoder, BinaryOutputEncoder)
        return (torch.sigmoid(value) > binary_threshold(encoder)).numpy()
    return None


def agreement(labels: np.ndarray | None, reference: np.ndarray | None) -> float | None:
    """The fraction of rows where both label arrays agree (None without labels)."""
    if labels is None or reference is None or len(labels) == 0:
        return None
    return float(np.mean(labels == reference))


def time_bundle(
    bundle: Path,
    arrays: Sequence[np.ndarray],
    *,
    threads: int,
    runs: int = 50,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> dict[str, float]:
    """Median latency in ms of the bundle's graph at each batch size, over `runs` calls after
    WARMUP_RUNS, with `threads` intra-op threads (and one inter-op thread)."""
    return BundleTimer(bundle, arrays, threads, batch_sizes).median_ms(runs)


def time_bundles_in_turn(
    bundles: Sequence[tuple[Path, Sequence[np.ndarray]]],
    *,
    threads: int,
    runs: int = 50,
    rounds: int = 5,
) -> list[dict[str, float]]:
    """Each (bundle, its test arrays)'s latency in ms by batch size, timed in turn: `rounds`
    rounds in which every bundle makes runs / rounds calls per batch size; the median of its
    round medians. Models timed minutes apart on a shared machine compare the load as much as
    the models; timed in turn, a change of load weighs on each alike."""
    timers = [BundleTimer(bundle, arrays, threads) for bundle, arrays in bundles]
    per_round = max(1, runs // rounds)
    rounds_ms: list[list[dict[str, float]]] = [[] for _ in timers]
    for _ in range(rounds):
        for timer, timed in zip(timers, rounds_ms, strict=True):
            timed.append(timer.median_ms(per_round))
    return [
        {size: float(np.median([one[size] for one in timed])) for size in timed[0]}
        for timed in rounds_ms
    ]


class BundleTimer:
    """An ONNX Runtime session of a bundle's graph with its feeds at each batch size (the first
    test rows, repeated when fewer than the batch), warmed up with WARMUP_RUNS calls each."""

    def __init__(
        self,
        bundle: Path,
        arrays: Sequence[np.ndarray],
        threads: int,
        batch_sizes: Sequence[int] = BATCH_SIZES,
    ) -> None:
        import onnxruntime

        from megalith.runtime.bundle import BundleFiles

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(BundleFiles(bundle).model), options, providers=["CPUExecutionProvider"]
        )
        names = [entry.name for entry in self.session.get_inputs()]
        self.feeds: dict[str, dict[str, np.ndarray]] = {}
        for size in batch_sizes:
            repeats = -(-size // len(arrays[0]))
            self.feeds[str(size)] = {
                name: np.ascontiguousarray(np.concatenate([array] * repeats)[:size])
                for name, array in zip(names, arrays, strict=True)
            }
            for _ in range(WARMUP_RUNS):
                self.session.run(None, self.feeds[str(size)])

    def median_ms(self, runs: int) -> dict[str, float]:
        """The median of `runs` timed calls in ms, by batch size."""
        latency = {}
        for size, feed in self.feeds.items():
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                self.session.run(None, feed)
                times.append((time.perf_counter() - start) * 1000)
            latency[size] = float(np.median(times))
        return latency


def file_mb(path: Path) -> float:
    """A file's size in MB (10^6 bytes)."""
    return round(path.stat().st_size / 1e6, 4)


def machine() -> dict[str, Any]:
    """The machine the latencies were measured on."""
    import onnxruntime

    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "onnxruntime": onnxruntime.__version__,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: the processor string below
    return platform.processor() or platform.machine()
