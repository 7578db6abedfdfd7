"""The export check: the same rows through PyTorch and through ONNX Runtime must agree.

Rows of the run's own test split run at batch sizes 1, 7 and 64 (text and number sequences also
cut to shorter lengths); per output, the largest difference of probabilities (category, binary)
or of standardised values (number) must stay within 1e-4, and predicted labels must all agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from megalith.data.features.binary import sigmoid
from megalith.data.features.category import softmax
from megalith.data.specs import InputSpec
from megalith.errors import RunError
from megalith.export.graph import free_length, shortest_audio

BATCH_SIZES = (1, 7, 64)
TOLERANCE = 1e-4
_SHORTEST = 8
"""Shortest cut of a text / sequence input checked (convolution encoders need a few steps)."""
AUDIO_CUT = -1
"""The check's case with variable-length audio shorter than fitted (a graph with a free time
axis must give PyTorch's numbers at another length)."""
_AUDIO_SHARE = 0.6
"""...cut to this share of its fitted samples."""


@dataclass(frozen=True)
class CheckedOutput:
    """One output as the check compares it: its name in the model and in the graph, its type,
    and for a binary output the probability above which the positive value is predicted."""

    name: str
    graph_name: str
    type: str
    threshold: float = 0.5


def check_export(
    model: nn.Module,
    session: Any,
    specs: Sequence[InputSpec],
    arrays: Sequence[np.ndarray],
    graph_inputs: Sequence[str],
    outputs: Sequence[CheckedOutput],
) -> dict[str, Any]:
    """Compare PyTorch and the ONNX Runtime `session` on the encoded rows `arrays` (one per
    input, in `specs` order). Returns what was checked and the largest difference per output.

    Raises:
        RunError: an output differs by more than 1e-4, or a predicted label differs; naming
            the output, the difference, the batch size and the input length.
    """
    worst = {output.name: 0.0 for output in outputs}
    lengths = _lengths(specs)
    cases = [(size, None) for size in BATCH_SIZES] + [(64, length) for length in lengths[1:]]
    audio = [s.name for s in specs if s.type == "audio" and free_length(s)]
    for batch_size, length in cases + ([(64, AUDIO_CUT)] if audio else []):
        cut = _cut(arrays, specs, length)
        expected = _torch_outputs(model, specs, cut, batch_size)
        found = _onnx_outputs(session, graph_inputs, outputs, cut, batch_size)
        for output in outputs:
            where = f"batch size {batch_size}" + (
                f", inputs cut to {length} steps" if length else ""
            )
            if length == AUDIO_CUT:
                where = f"batch size {batch_size}, {', '.join(audio)} cut to {_AUDIO_SHARE:.0%}"
            difference = _compare(output, expected[output.name], found[output.name], where)
            worst[output.name] = max(worst[output.name], difference)
    return {
        "rows": len(arrays[0]),
        "batch_sizes": list(BATCH_SIZES),
        "lengths": lengths,
        "tolerance": TOLERANCE,
        "max_abs_difference": worst,
    }


def _lengths(specs: Sequence[InputSpec]) -> list[int]:
    """The fitted length first, then shorter cuts, when an input is text or a sequence whose
    length the graph leaves free."""
    free = [s for s in specs if s.type in ("text", "sequence")]
    if not free or not all(free_length(s) for s in free):
        return []
    longest = max(s.shape[0] for s in free)
    return sorted({longest, max(min(longest, _SHORTEST), longest // 2)}, reverse=True)


def _cut(arrays: Sequence[np.ndarray], specs: Sequence[InputSpec], length: int | None) -> list:
    """Text and sequences cut to `length` steps; for AUDIO_CUT, variable-length audio cut to
    _AUDIO_SHARE of its samples (clips that end sooner keep their padding)."""
    if length is None:
        return list(arrays)
    if length == AUDIO_CUT:
        return [
            a[:, : _audio_samples(s)] if s.type == "audio" and free_length(s) else a
            for a, s in zip(arrays, specs, strict=True)
        ]
    return [
        a[:, :length] if s.type in ("text", "sequence") else a
        for a, s in zip(arrays, specs, strict=True)
    ]


def _audio_samples(spec: InputSpec) -> int:
    return max(int(spec.shape[0] * _AUDIO_SHARE), shortest_audio(spec))


def _torch_outputs(
    model: nn.Module, specs: Sequence[InputSpec], arrays: Sequence[np.ndarray], batch_size: int
) -> dict[str, np.ndarray]:
    pieces: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, len(arrays[0]), batch_size):
            batch = {
                s.name: torch.from_numpy(np.ascontiguousarray(a[start : start + batch_size]))
                for s, a in zip(specs, arrays, strict=True)
            }
            for name, value in model(batch).items():
                pieces.setdefault(name, []).append(value.double().numpy())
    return {name: np.concatenate(values) for name, values in pieces.items()}


def _onnx_outputs(
    session: Any,
    graph_inputs: Sequence[str],
    outputs: Sequence[CheckedOutput],
    arrays: Sequence[np.ndarray],
    batch_size: int,
) -> dict[str, np.ndarray]:
    pieces: dict[str, list[np.ndarray]] = {o.name: [] for o in outputs}
    wanted = [o.graph_name for o in outputs]
    for start in range(0, len(arrays[0]), batch_size):
        feed = {
            name: np.ascontiguousarray(a[start : start + batch_size])
            for name, a in zip(graph_inputs, arrays, strict=True)
        }
        for output, value in zip(outputs, session.run(wanted, feed), strict=True):
            pieces[output.name].append(np.asarray(value, dtype=np.float64))
    return {name: np.concatenate(values) for name, values in pieces.items()}


def _compare(output: CheckedOutput, expected: np.ndarray, found: np.ndarray, where: str) -> float:
    """The largest |difference| of the output's probabilities (or standardised values);
    raises RunError past the tolerance or when a predicted label differs."""
    if expected.shape != found.shape:
        raise RunError(
            f"export check failed: output '{output.name}' has shape {found.shape} in ONNX "
            f"Runtime but {expected.shape} in PyTorch ({where})"
        )
    if output.type in ("category", "text"):  # text: a language model's next-token logits
        expected, found = softmax(expected), softmax(found)
        labels = (expected.argmax(axis=-1), found.argmax(axis=-1))
    elif output.type == "binary":
        expected, found = sigmoid(expected), sigmoid(found)
        labels = (expected > output.threshold, found > output.threshold)
    else:
        labels = (np.zeros(len(expected)), np.zeros(len(found)))
    difference = float(np.max(np.abs(expected - found), initial=0.0))
    what = "standardised value" if output.type == "number" else "probability"
    if not difference <= TOLERANCE:  # NaN fails too
        raise RunError(
            f"export check failed: output '{output.name}' differs between PyTorch and ONNX "
            f"Runtime by {difference:.2e} in {what} (limit {TOLERANCE:.0e}) at {where}; "
            "the bundle was not written"
        )
    differing = int(np.sum(labels[0] != labels[1]))
    if differing:
        raise RunError(
            f"export check failed: output '{output.name}': the predicted label differs on "
            f"{differing} of {len(expected)} rows between PyTorch and ONNX Runtime at {where}; "
            "the bundle was not written"
        )
    return difference
