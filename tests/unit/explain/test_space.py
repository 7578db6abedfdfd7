"""The attributed space: the wrapped model computes what the model does, and Captum's Integrated
Gradients over it is complete, for every input type."""

from __future__ import annotations

import pytest
import torch
from model_check import random_batch

from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.data.specs import InputSpec, OutputSpec
from megalith.explain.mapping import column_values, unit_values
from megalith.explain.methods import attribute, output_at
from megalith.explain.space import AttributedModel, InputSpace, input_spaces
from megalith.models.blocks import FeatureModel
from megalith.models.cnn import CNNConfig
from megalith.models.registry import build_model

INPUTS = [
    InputSpec("size", "number"),
    InputSpec("member", "binary"),
    InputSpec("color", "category", vocab_size=5, embedding_dim=3),
    InputSpec("review", "text", vocab_size=30, shape=(6,), embedding_dim=4),
    InputSpec(
        "notes",
        "text",
        vocab_size=30,
        shape=(5,),
        embedding_dim=4,
        encoder=SequenceEncoderConfig(kind="lstm", hidden=4),
    ),
    InputSpec("series", "sequence", shape=(7, 2), embedding_dim=4),
    InputSpec("image", "image", shape=(1, 8, 8)),
]
OUTPUTS = [
    OutputSpec("label", "category", num_classes=3),
    OutputSpec("big", "binary", num_classes=2),
    OutputSpec("score", "number", mean=10.0, std=2.0),
]


def _model() -> FeatureModel:
    torch.manual_seed(0)
    model = build_model(CNNConfig(channels=[4], hidden=[8]), INPUTS, OUTPUTS)
    assert isinstance(model, FeatureModel)
    return model.eval()


def _spaces(model: FeatureModel, rows: int = 6) -> tuple[list[InputSpace], dict]:
    batch, _ = random_batch(INPUTS, OUTPUTS, batch_size=rows, seed=1)
    return input_spaces(model, INPUTS, {k: v.numpy() for k, v in batch.items()}), batch


def test_the_wrapped_model_gives_the_model_s_outputs() -> None:
    model = _model()
    spaces, batch = _spaces(model)
    with torch.no_grad():
        expected = model(batch)
    values = tuple(s.values for s in spaces)
    extras = tuple(s.extra for s in spaces)
    for output in OUTPUTS:
        got = AttributedModel(model, INPUTS, output)(*values, *extras).detach()
        if output.type == "category":
            torch.testing.assert_close(got, expected["label"])
        elif output.type == "binary":
            torch.testing.assert_close(got[:, 1], expected["big"])
            torch.testing.assert_close(got[:, 0], -expected["big"])
        else:
            torch.testing.assert_close(got, expected["score"] * 2.0 + 10.0)


def test_units_are_numbered_across_inputs_and_padding_is_not_a_unit() -> None:
    model = _model()
    spaces, batch = _spaces(model)
    counts = [s.valid.shape[1] for s in spaces]
    assert counts == [1, 1, 1, 6, 5, 7, 64]  # an 8 x 8 image: 8 x 8 patches of one pixel
    text = spaces[3]
    assert torch.equal(text.valid, batch["review"] != 0)
    assert torch.equal(spaces[5].valid, batch["series"][..., 1] > 0.5)
    starts = [int(s.units.min()) for s in spaces]
    assert starts == [0, 1, 2, 3, 9, 14, 21]


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o.type)
def test_integrated_gradients_sum_to_the_change_of_the_output(output: OutputSpec) -> None:
    model = _model()
    spaces, _ = _spaces(model)
    forward = AttributedModel(model, INPUTS, output)
    target = None if output.type == "number" else torch.tensor([0, 1, 1, 0, 1, 0])
    found = attribute("ig", forward, spaces, target, steps=50, internal_batch_size=128)
    assert found.gap is not None and found.steps is not None
    extras = tuple(s.extra for s in spaces)
    change = output_at(forward, tuple(s.values for s in spaces), extras, target) - output_at(
        forward, tuple(s.baseline for s in spaces), extras, target
    )
    columns = column_values(spaces, unit_values(spaces, found.values, "ig"))
    total = torch.as_tensor(columns.sum(axis=1), dtype=torch.float32)
    gap = (total - change).abs() / change.abs().clamp(min=0.01)
    assert float(gap.max()) <= 0.05
    assert float(found.gap.max()) <= 0.05
    assert int(found.steps.min()) >= 50


def test_occlusion_gives_a_unit_the_fall_of_the_output_when_it_is_removed() -> None:
    model = _model()
    spaces, _ = _spaces(model, rows=2)
    forward = AttributedModel(model, INPUTS, OUTPUTS[2])
    found = attribute("occlusion", forward, spaces, None, internal_batch_size=64)
    units = unit_values(spaces, found.values, "occlusion")
    values = [s.values for s in spaces]
    extras = tuple(s.extra for s in spaces)
    values[0] = spaces[0].baseline  # remove the 'size' column
    removed = output_at(forward, tuple(values), extras, None)
    start = output_at(forward, tuple(s.values for s in spaces), extras, None)
    torch.testing.assert_close(units[:, 0].float(), start - removed)
