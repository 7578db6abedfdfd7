"""bundle.json: what a bundle's graph takes and gives, in words a server or a person can read."""

from __future__ import annotations

import importlib.metadata
import platform
from typing import TYPE_CHECKING, Any

from megalith.data.features.binary import BinaryOutputEncoder
from megalith.data.features.category import CategoryOutputEncoder
from megalith.data.features.number import NumberOutputEncoder
from megalith.data.features.text import TextOutputEncoder
from megalith.data.preprocess import Preprocessor
from megalith.data.specs import InputSpec
from megalith.export.graph import free_length, graph_names
from megalith.export.verify import CheckedOutput
from megalith.paths import file_sha256
from megalith.runtime.bundle import FORMAT, INPUT_DTYPES, MODEL_FILE, PREPROCESSOR_FILE, VERSION

if TYPE_CHECKING:
    from megalith.export import Run


def binary_threshold(encoder: BinaryOutputEncoder) -> float:
    """The probability above which a binary output predicts its positive value: the fitted one
    when the preprocessor resolved it, else the configured one."""
    fitted = getattr(encoder, "threshold", None)
    return float(fitted if isinstance(fitted, (int, float)) else encoder.config.threshold)


def graph_outputs(preprocessor: Preprocessor) -> list[CheckedOutput]:
    """Each output with its graph name, type and (binary) threshold."""
    specs = preprocessor.output_specs
    names = graph_names([s.name for s in specs], "output")
    return [
        CheckedOutput(
            name=spec.name,
            graph_name=graph_name,
            type=spec.type,
            threshold=binary_threshold(encoder)
            if isinstance(encoder, BinaryOutputEncoder)
            else 0.5,
        )
        for spec, graph_name, encoder in zip(specs, names, preprocessor.outputs, strict=True)
    ]


def describe_bundle(
    run: Run,
    specs: list[InputSpec],
    graph_inputs: list[str],
    outputs: list[CheckedOutput],
    checked: dict[str, Any],
) -> dict[str, Any]:
    """The contents of bundle.json."""
    inputs = [
        {
            "name": spec.name,
            "graph_name": graph_name,
            "type": spec.type,
            "dtype": INPUT_DTYPES[spec.type],
            "shape": ["batch", *_shape(spec)],
            **({"length": spec.shape[0]} if spec.type in ("text", "sequence") else {}),
        }
        for spec, graph_name in zip(specs, graph_inputs, strict=True)
    ]
    language_model = not run.preprocessor.input_specs
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": run.config.name,
        "arch": run.config.model.arch,
        "task": "language_model" if language_model else "predict",
        "model": MODEL_FILE,
        "preprocessor": PREPROCESSOR_FILE,
        "inputs": inputs,
        # how the run read its CSV files, so a bundle reads new ones the same way
        "table": {"delimiter": run.config.data.delimiter, "decimal": run.config.data.decimal},
        "outputs": [
            _describe_output(o, e) for o, e in zip(outputs, run.preprocessor.outputs, strict=True)
        ],
        # the run's weights it was exported from: serving RUN notices a bundle left stale
        "weights_sha256": file_sha256(run.path / "model.safetensors"),
        "versions": _versions(),
        "verified": checked,
    }


def _shape(spec: InputSpec) -> list[Any]:
    """An input's shape after the batch: text (length,), sequence (length, 2), image (C, H, W);
    the length is free up to the fitted one where the graph allows it."""
    if free_length(spec):
        return [f"length <= {spec.shape[0]}", *spec.shape[1:]]
    return list(spec.shape)


def _describe_output(output: CheckedOutput, encoder: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": output.name, "graph_name": output.graph_name}
    entry["type"] = output.type
    if isinstance(encoder, CategoryOutputEncoder):
        entry.update(graph_output="logits (batch, classes)", classes=encoder.classes)
    elif isinstance(encoder, BinaryOutputEncoder):
        negative, positive = encoder.codec.negative, encoder.codec.positive
        entry.update(
            graph_output="logit (batch,): probability of the positive value = sigmoid(logit)",
            values={"negative": negative, "positive": positive},
            threshold=output.threshold,
        )
    elif isinstance(encoder, TextOutputEncoder):
        entry.update(
            graph_output="next-token logits (batch, length, vocabulary)",
            end_id=encoder.end_id,
        )
    elif isinstance(encoder, NumberOutputEncoder):
        entry.update(
            graph_output="standardised value (batch,): prediction = value * std + mean",
            units={"mean": encoder.mean, "std": encoder.std},
        )
    return entry


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    try:
        megalith = importlib.metadata.version("megalith")
    except importlib.metadata.PackageNotFoundError:
        megalith = "unknown"
    return {
        "megalith": megalith,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }
