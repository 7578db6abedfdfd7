"""A variable-length audio run's ONNX graph takes clips at any length (its time axis is free):
ONNX Runtime gives PyTorch's numbers within 1e-4 at the fitted length and shorter ones. A crnn's
GRU cannot be exported over a symbolic number of frames, so its graph keeps the fitted length."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from audio_specs import CLIP

from megalith.data.specs import InputSpec, OutputSpec
from megalith.export import graph_input_specs
from megalith.export.graph import export_graph, free_length
from megalith.export.verify import CheckedOutput, check_export
from megalith.models import CNNConfig, CRNNConfig, build_model

LABEL = [OutputSpec("label", "category", num_classes=4)]


def _clips(rows: int, samples: int, seed: int) -> np.ndarray:
    """Noise clips whose lengths run from a sixth of `samples` to all of it (zeros after)."""
    rng = np.random.default_rng(seed)
    waves = (0.1 * rng.standard_normal((rows, samples))).astype(np.float32)
    for row, length in enumerate(np.linspace(samples // 6, samples, rows).astype(int)):
        waves[row, length:] = 0
    return waves


@pytest.mark.slow  # one ONNX export (about 4 s on an idle core)
def test_a_masked_cnn_graph_predicts_clips_of_other_lengths_as_pytorch(tmp_path: Path) -> None:
    import onnxruntime

    torch.manual_seed(0)
    model = build_model(CNNConfig(channels=[8, 16], hidden=[16]), [CLIP], LABEL).eval()
    path = tmp_path / "model.onnx"
    export_graph(model, [CLIP], [_clips(2, 2400, 0)], ["input_clip"], ["label"], path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    (graph_input,) = session.get_inputs()
    assert isinstance(graph_input.shape[1], str)  # a named, free dimension: not 2400
    for samples in (2400, 1700, 900, 256):
        clips = _clips(6, samples, samples)
        with torch.inference_mode():
            expected = model({"clip": torch.from_numpy(clips)})["label"].numpy()
        (found,) = session.run(None, {"input_clip": clips})
        assert np.abs(found - expected).max() < 1e-4, samples
    checked = check_export(
        model,
        session,
        [CLIP],
        [_clips(8, 2400, 1)],
        ["input_clip"],
        [CheckedOutput("label", "output_label", "category")],
    )  # the export's own check, which also runs the audio cut to 60% of its samples
    assert checked["max_abs_difference"]["label"] < 1e-4


def test_a_crnn_or_a_torchscript_graph_keeps_the_fitted_length() -> None:
    cnn = build_model(CNNConfig(channels=[8], hidden=[8]), [CLIP], LABEL)
    crnn = build_model(CRNNConfig(channels=[8], gru_hidden=8), [CLIP], LABEL)
    inputs = SimpleNamespace(input_specs=[CLIP])

    def exported(model: torch.nn.Module, exporter: str = "dynamo") -> InputSpec:
        run: Any = SimpleNamespace(model=model, preprocessor=inputs)
        (spec,) = graph_input_specs(run, exporter)
        return spec

    assert free_length(exported(cnn))  # the dynamo exporter, no GRU: free
    assert not free_length(exported(crnn)) and not free_length(exported(cnn, "torchscript"))
    assert exported(crnn).shape == CLIP.shape and exported(crnn).log_mel == CLIP.log_mel
