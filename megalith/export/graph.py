"""The run's network as an ONNX graph: encoded inputs in, raw outputs out.

The graph takes the encoded inputs of megalith.data.specs (float32 / int64 / uint8 arrays, the
batch first; text and number sequences (B, L) and (B, L, 2) with L free up to the fitted
length) and returns each head's raw output (logits, or a standardised value): turning those into
labels and probabilities is the preprocessor's `decode`, shared with the PyTorch path.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from megalith.data.specs import InputSpec
from megalith.errors import RunError

_SEQUENCE_TYPES = frozenset({"text", "sequence"})
_EXTERNAL_DATA_BYTES = 1_800_000_000
"""Past this many bytes of weights the graph keeps them in model.onnx.data (protobuf's 2 GB)."""


class PositionalModel(nn.Module):
    """The model with tensors in and a tuple out, in the bundle's order (an ONNX graph has
    no dictionaries)."""

    def __init__(self, model: nn.Module, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.inputs, self.outputs = list(inputs), list(outputs)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        results = self.model(dict(zip(self.inputs, tensors, strict=True)))
        return tuple(results[name] for name in self.outputs)


def graph_names(names: Sequence[str], prefix: str) -> list[str]:
    """Names for the graph's inputs or outputs: `prefix` + a slug of the column name, unique
    ("mean radius" -> "input_mean_radius"), since column names may hold any character."""
    taken: set[str] = set()
    result = []
    for name in names:
        slug = f"{prefix}_{re.sub(r'[^0-9A-Za-z_]+', '_', name).strip('_') or 'column'}"
        candidate, n = slug, 2
        while candidate in taken:
            candidate, n = f"{slug}_{n}", n + 1
        taken.add(candidate)
        result.append(candidate)
    return result


def free_length(spec: InputSpec) -> bool:
    """Whether the graph takes this input at any length up to the fitted one: text and number
    sequences, except through a plain rnn encoder, which the exporter unrolls step by step (its
    graph takes the fitted length, which is what the preprocessor pads every row to); and a
    `variable_length` audio input's samples, its frames mask computed in the graph
    (megalith.models.audio_frames), when the clip holds more than two log-mel windows."""
    if spec.type == "audio":
        return spec.variable_length and spec.shape[0] > shortest_audio(spec)
    kind = getattr(spec.encoder, "kind", None)
    return spec.type in _SEQUENCE_TYPES and kind != "rnn"


def shortest_audio(spec: InputSpec) -> int:
    """The fewest samples the exported graph of a variable-length audio input is traced for: two
    log-mel windows (the front end's reflect padding needs more samples than half a window, and
    the exporter refuses a symbolic length that could leave it fewer)."""
    return 2 * int(spec.log_mel.n_fft)


def _dynamic_shapes(specs: Sequence[InputSpec]) -> tuple[dict[int, torch.export.Dim], ...]:
    """The batch dimension of every input is free; so is the length of text and sequences, and
    the samples of variable-length audio."""
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    shapes = []
    for i, spec in enumerate(specs):
        dims = {0: batch}
        if free_length(spec):
            shortest = shortest_audio(spec) if spec.type == "audio" else 1
            dims[1] = torch.export.Dim(
                f"length_{i}", min=shortest, max=max(spec.shape[0], shortest + 1)
            )
        shapes.append(dims)
    return tuple(shapes)


EXPORTERS = ("dynamo", "torchscript")
"""`dynamo`: torch.export-based (PyTorch's default since 2.9); `torchscript`: the legacy
tracing exporter, a fallback for a model the first cannot translate (deprecated by PyTorch)."""
TORCHSCRIPT_OPSET = 17


def export_graph(
    model: nn.Module,
    specs: Sequence[InputSpec],
    example: Sequence[np.ndarray],
    input_names: Sequence[str],
    output_names: Sequence[str],
    path: Path,
    exporter: str = "dynamo",
) -> None:
    """Trace `model` (in eval mode, fp32) on `example` rows with `exporter` (one of EXPORTERS)
    and save the ONNX graph to `path`.

    Raises:
        RunError: the exporter could not translate the model; one line naming what failed.
    """
    positional = PositionalModel(model, [s.name for s in specs], output_names).eval()
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in example)
    if exporter == "torchscript":
        with warnings.catch_warnings(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            _export_torchscript(positional, tensors, specs, input_names, output_names, path)
        return
    names = (list(input_names), graph_output_names(output_names))
    free = {"tensors": _dynamic_shapes(specs)}  # forward(*tensors)
    trace_to_onnx(positional, tensors, names, free, path)


def trace_to_onnx(
    module: nn.Module,
    tensors: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    dynamic_shapes: Any,
    path: Path,
) -> None:
    """Trace `module.forward(*tensors)` (in eval mode) with the dynamo exporter and save the
    graph to `path`; `names` are the graph's input and output names, `dynamic_shapes` the free
    dimensions of each input ({dimension: Dim} per forward argument, as torch.export takes).

    Raises:
        RunError: the exporter could not translate the module; one line naming what failed.
    """
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    # the exporter prints its progress and warns about its own internals; the user sees a result
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                module,
                tensors,
                dynamo=True,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=dynamic_shapes,
                verbose=False,
                optimize=True,
            )
            assert program is not None
            program.save(str(path), external_data=weights > _EXTERNAL_DATA_BYTES)
        except Exception as error:  # the exporter raises many types; the user needs one line
            raise RunError(f"the ONNX exporter failed: {_first_line(error)}") from error


def _export_torchscript(
    model: nn.Module,
    tensors: tuple[torch.Tensor, ...],
    specs: Sequence[InputSpec],
    input_names: Sequence[str],
    output_names: Sequence[str],
    path: Path,
) -> None:
    """The legacy exporter: traces one forward, so the free dimensions are named per input."""
    outputs = graph_output_names(output_names)
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in outputs}
    for i, (name, spec) in enumerate(zip(input_names, specs, strict=True)):
        axes[name] = {0: "batch", 1: f"length_{i}"} if free_length(spec) else {0: "batch"}
    try:
        torch.onnx.export(
            model,
            tensors,
            str(path),
            dynamo=False,
            input_names=list(input_names),
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=TORCHSCRIPT_OPSET,
        )
    except Exception as error:  # the exporter raises many types; the user needs one line
        raise RunError(f"the TorchScript ONNX exporter failed: {_first_line(error)}") from error


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Hold a logger at ERROR (the exporter logs notes such as 'torchvision is not installed')."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def graph_output_names(names: Sequence[str]) -> list[str]:
    return graph_names(names, "output")


def _first_line(error: BaseException) -> str:
    """The line of an exporter error that says what failed (its summary, when it has one)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    if "## Exception summary" in text:
        text = text.split("## Exception summary", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]
