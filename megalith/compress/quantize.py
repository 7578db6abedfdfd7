"""int8 quantization of a run's ONNX bundle through ONNX Runtime (`onnxruntime.quantization`).

    bundle = quantize_run(Run.load("runs/digits-cnn"), Path("digits-int8"))

Two schemes, chosen per graph (`scheme="auto"`) because neither pays everywhere on a CPU:
- dynamic: weights stored as int8, activations quantized on the fly per batch (MatMulInteger).
  It suits Linear/MatMul-dominated graphs (MLPs, Transformers); on convolutions it writes
  ConvInteger, which measured 2-12x *slower* than fp32 on a 2-core x86 CPU.
- static: weights int8 per output channel, activation ranges fixed beforehand from calibration
  rows of the train split (min/max), written as QuantizeLinear/DequantizeLinear pairs (QDQ) that
  ONNX Runtime fuses into int8 kernels; the scheme for convolutional graphs.
(Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", for the affine int8 scheme both use.)

The result is an ordinary bundle (model.onnx, preprocessor.json, bundle.json) that megalith.runtime,
`megalith predict BUNDLE` and `megalith serve BUNDLE` read unchanged; bundle.json's
`quantization` records the scheme and why, and `verified` its agreement with the fp32 bundle.
"""

from __future__ import annotations

import collections
import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from rich.console import Console

from megalith.errors import RunError
from megalith.runtime.bundle import DESCRIPTION_FILE, BundleFiles
from megalith.stage_folder import check_output_folder, staged_folder

if TYPE_CHECKING:
    from megalith.run import Run

Scheme = Literal["auto", "dynamic", "static"]
SCHEMES = ("auto", "dynamic", "static")
CONV_OPS = ("Conv", "ConvTranspose")
CHECK_ROWS = 256
"""Test rows run through the fp32 and the int8 graph for bundle.json's `verified`."""


def quantize_run(
    run: Run,
    output_dir: Path,
    *,
    scheme: Scheme = "auto",
    calibration_rows: int = 256,
    fp32_bundle: Path | None = None,
    overwrite: bool = False,
    console: Console | None = None,
) -> Path:
    """Write an int8 bundle of `run` in `output_dir`; returns the folder.

    Args:
        scheme: "dynamic", "static" or "auto" (static when the graph has convolutions).
        calibration_rows: rows of the train split that fix the activation ranges (static).
        fp32_bundle: the run's fp32 bundle when already exported (else exported here first).
        overwrite: replace an earlier bundle in `output_dir`.

    Raises:
        RunError: unknown scheme; a language model or seq2seq run (not quantized yet);
            `output_dir` holds other files; the export or the quantizer failed.
    """
    if scheme not in SCHEMES:
        raise RunError(f"--scheme {scheme}: unknown; choose {', '.join(SCHEMES)}")
    if calibration_rows < 1:
        raise RunError(f"calibration_rows {calibration_rows}: give at least 1 row")
    check_quantizable(run)
    target = Path(output_dir)
    check_output_folder(
        target, overwrite, markers=[DESCRIPTION_FILE], holds="a bundle", replace="it"
    )
    with tempfile.TemporaryDirectory(prefix=".fp32-", dir=target.parent) as scratch:
        source = fp32_bundle or run.export(Path(scratch) / "fp32")
        with staged_folder(target) as folder:
            _quantize_bundle(
                run, BundleFiles(source), BundleFiles(folder), scheme, calibration_rows, scratch
            )
    note = json.loads(BundleFiles(target).description.read_text(encoding="utf-8"))
    quantization, console = note["quantization"], console or Console(stderr=True)
    console.print(f"quantize: {quantization['scheme']} int8 ({quantization['reason']})")
    if quantization["pre_processed"] is not True:
        console.print(
            f"[yellow]note[/]: ONNX Runtime's pre-processing {quantization['pre_processed']}"
        )
    return target


def check_quantizable(run: Run) -> None:
    """Raise RunError when the run is a language model or a seq2seq model (two graphs)."""
    from megalith.export import check_supported
    from megalith.models.seq2seq import Seq2Seq

    run.check_predicts()
    check_supported(run)
    if isinstance(run.model, Seq2Seq):
        raise RunError(
            f"{run.path}: quantizing a seq2seq model (two graphs) is not supported yet; "
            "quantize takes models that predict columns (mlp, cnn, resnet, text encoders)"
        )


def choose_scheme(graph: Any) -> tuple[str, str]:
    """("static" | "dynamic", why) for an onnx.ModelProto: static when it convolves."""
    ops = collections.Counter(node.op_type for node in graph.graph.node)
    convs = sum(ops[op] for op in CONV_OPS)
    matmuls = ops["MatMul"] + ops["Gemm"]
    if convs:
        return "static", (
            f"{convs} convolution(s): dynamic int8 would make them ConvInteger, slow on CPU; "
            "static int8 with calibration rows instead"
        )
    return "dynamic", f"{matmuls} MatMul/Gemm and no convolution: dynamic int8 (weights int8)"


def _quantize_bundle(
    run: Run, source: BundleFiles, target: BundleFiles, scheme: str, rows: int, scratch: str
) -> None:
    """model.onnx quantized, preprocessor.json copied, bundle.json with the quantization."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    description = json.loads(source.description.read_text(encoding="utf-8"))
    graph_inputs = [entry["graph_name"] for entry in description["inputs"]]
    chosen, reason = choose_scheme(onnx.load(str(source.model), load_external_data=False))
    if scheme != "auto":
        chosen, reason = scheme, "asked for"
    prepared, pre_processed = _pre_process(source.model, Path(scratch) / "prepared.onnx")
    try:
        if chosen == "dynamic":
            quantize_dynamic(prepared, target.model, weight_type=QuantType.QInt8)
        else:
            reader = _CalibrationRows(graph_inputs, calibration_arrays(run, "train", rows))
            quantize_static(
                prepared,
                target.model,
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
    except (RuntimeError, ValueError, KeyError, TypeError) as error:  # the quantizer's own
        raise RunError(f"{run.path}: ONNX Runtime could not quantize the graph ({error})") from None
    shutil.copyfile(source.preprocessor, target.preprocessor)
    checked = compare_graphs(
        source.model,
        target.model,
        graph_inputs,
        calibration_arrays(run, "test", CHECK_ROWS),
        description,
    )
    description["quantization"] = {
        "scheme": chosen,
        "format": "int8",
        "reason": reason,
        "calibration_rows": rows if chosen == "static" else 0,
        "per_channel": chosen == "static",
        "pre_processed": pre_processed,
        "source_graph_mb": round(source.model.stat().st_size / 1e6, 4),
    }
    description["verified"] = checked
    target.description.write_text(json.dumps(description, indent=1), encoding="utf-8")


def _pre_process(model: Path, prepared: Path) -> tuple[Path, bool | str]:
    """ONNX Runtime's pre-processing (shape inference, graph optimisation) that quantization
    works best after: (the graph to quantize, True), or (the graph as it is, why not) when it
    cannot be pre-processed."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:  # in the scratch folder: its shape inference leaves debugging copies in the cwd
        with contextlib.chdir(prepared.parent):
            quant_pre_process(str(model.resolve()), str(prepared.resolve()))
    except Exception as error:  # its shape inference fails on some graphs; an optional step
        return model, f"skipped: {type(error).__name__}: {str(error)[:200]}"
    return prepared, True


class _CalibrationRows:
    """ONNX Runtime's CalibrationDataReader over encoded rows, 32 at a time."""

    def __init__(self, graph_inputs: Sequence[str], arrays: Sequence[np.ndarray]) -> None:
        self._batches = _batches(graph_inputs, arrays, 32)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _batches(
    graph_inputs: Sequence[str], arrays: Sequence[np.ndarray], size: int
) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(arrays[0]), size):
        yield {
            name: np.ascontiguousarray(array[start : start + size])
            for name, array in zip(graph_inputs, arrays, strict=True)
        }


def calibration_arrays(run: Run, split: str, rows: int) -> list[np.ndarray]:
    """The encoded inputs (graph order) of the first `rows` rows of a split of the run's data
    (another split when that one is empty).

    Raises:
        RunError: the run's data has no rows at all.
    """
    table, splits = run.data_splits()
    for name in (split, "train", "val", "test"):
        frame = splits.get(name)
        if frame is None or len(frame) == 0:
            continue
        origin = f"{table.origin} ({name} split)"
        encoded = run.preprocessor.encode_inputs(
            frame.iloc[:rows], base_dir=table.base_dir, origin=origin
        )
        return [encoded[spec.name] for spec in run.preprocessor.input_specs]
    raise RunError(f"{run.path}: the run's data has no rows to quantize with")


def compare_graphs(
    fp32: Path,
    int8: Path,
    graph_inputs: Sequence[str],
    arrays: Sequence[np.ndarray],
    description: dict[str, Any],
) -> dict[str, Any]:
    """Per output, the label agreement and largest probability (or standardised value)
    difference between the fp32 and the int8 graph on the same rows."""
    import onnxruntime

    from megalith.data.features.binary import sigmoid
    from megalith.data.features.category import softmax

    outputs = description["outputs"]
    results = []
    for path in (fp32, int8):
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [entry["graph_name"] for entry in outputs]
        pieces = [session.run(names, feed) for feed in _batches(graph_inputs, arrays, 64)]
        results.append([np.concatenate([p[i] for p in pieces]) for i in range(len(names))])
    agreement, difference = {}, {}
    for i, entry in enumerate(outputs):
        a, b = (np.asarray(r[i], dtype=np.float64) for r in results)
        if entry["type"] == "category":
            a, b = softmax(a), softmax(b)
            agreement[entry["name"]] = float(np.mean(a.argmax(-1) == b.argmax(-1)))
        elif entry["type"] == "binary":
            a, b = sigmoid(a), sigmoid(b)
            cut = float(entry.get("threshold", 0.5))
            agreement[entry["name"]] = float(np.mean((a > cut) == (b > cut)))
        difference[entry["name"]] = float(np.max(np.abs(a - b), initial=0.0))
    return {
        "against": "the fp32 bundle it was quantized from",
        "rows": len(arrays[0]),
        "label_agreement": agreement,
        "max_abs_difference": difference,
    }
