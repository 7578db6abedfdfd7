"""The space attributions live in: each input as the first differentiable tensor the model sees.

Category and text inputs arrive as integer ids, which have no gradient, so they are attributed
at their embeddings; the other inputs are attributed as encoded. Each input has a baseline, the
"absent" value that Integrated Gradients starts from and that occlusion and the deletion check
put in place of a feature:

    input     attributed tensor            baseline
    number    (B,) encoded value           0: the train mean of a standardised number
    binary    (B,) 0.0 / 1.0               0: the negative value
    category  (B, D) its embedding         the embedding of the train split's most frequent value
    text      (B, L, D) token embeddings   0, the padding token's embedding (all-zero)
    image     (B, C, H, W) pixels 0..255   0: a black image
    sequence  (B, L) standardised values   0: the train mean; padding steps stay padding

Each input is also cut into *units*, the features occlusion removes one at a time and the
deletion check ranks: a number, binary or category column is one unit; a text is one unit per
token position, a sequence one per step, an image one per square patch (at most 8 x 8 patches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.models.blocks import FeatureModel, TextEncoder

PATCHES_PER_SIDE = 8
"""An image is cut into at most this many patches per side for occlusion and deletion."""


@dataclass
class InputSpace:
    """One input in the attributed space, for a batch of B rows."""

    spec: InputSpec
    values: torch.Tensor
    """The attributed tensor (B, ...)."""
    baseline: torch.Tensor
    """The same shape: what 'absent' means for this input."""
    extra: torch.Tensor | None
    """What the model needs besides `values`: text token ids (B, L), a sequence's mask (B, L)."""
    units: torch.Tensor
    """int64, broadcastable to values with a first dimension of 1: each element's unit id."""
    valid: torch.Tensor
    """bool (B, n_units of this input): units that hold data (not padding)."""


def input_spaces(
    model: FeatureModel, specs: list[InputSpec], encoded: dict[str, np.ndarray]
) -> list[InputSpace]:
    """The attributed tensors of encoded input arrays (shapes as in megalith.data.specs), with
    their baselines and units numbered consecutively across inputs, in the model's input order."""
    spaces, first = [], 0
    for encoder, spec in zip(model.encoders, specs, strict=True):
        space = _space(encoder, spec, torch.as_tensor(encoded[spec.name]), first)
        first += space.valid.shape[1]
        spaces.append(space)
    return spaces


def first_rows(spaces: list[InputSpace], count: int) -> list[InputSpace]:
    """The spaces of the first `count` rows only."""
    return [
        InputSpace(
            s.spec,
            s.values[:count],
            s.baseline[:count],
            None if s.extra is None else s.extra[:count],
            s.units,
            s.valid[:count],
        )
        for s in spaces
    ]


def _space(encoder: nn.Module, spec: InputSpec, array: torch.Tensor, first: int) -> InputSpace:
    rows = array.shape[0]
    if spec.type in ("number", "binary"):
        values = array.float()
        units = torch.tensor([first])
        return InputSpace(spec, values, torch.zeros_like(values), None, units, _all(rows, 1))
    if spec.type == "category":
        embedding: nn.Embedding = encoder.embedding  # type: ignore[assignment]
        # the vocabulary is ordered by train frequency, so id 1 is the most frequent value: a
        # trained, typical point; the unknown id's row (0) barely trains, which made its
        # distance to any category, relevant or not, look like importance
        common = 1 if embedding.num_embeddings > 1 else 0
        with torch.no_grad():
            values = embedding(array)  # (B, D)
            baseline = embedding.weight[common].expand_as(values).clone()
        return InputSpace(spec, values, baseline, None, torch.tensor([[first]]), _all(rows, 1))
    if isinstance(encoder, TextEncoder):
        with torch.no_grad():
            values = encoder.embedding(array)  # (B, L, D)
        length = array.shape[1]
        units = (first + torch.arange(length)).view(1, length, 1)
        return InputSpace(spec, values, torch.zeros_like(values), array, units, array != 0)
    if spec.type == "image":
        values = array.float()  # (B, C, H, W)
        units, count = _patches(values.shape[2], values.shape[3], first)
        return InputSpace(spec, values, torch.zeros_like(values), None, units, _all(rows, count))
    if spec.type == "sequence":
        values, mask = array[..., 0].float(), array[..., 1].float()  # (B, L), (B, L)
        units = (first + torch.arange(values.shape[1])).view(1, -1)
        return InputSpace(spec, values, torch.zeros_like(values), mask, units, mask > 0.5)
    raise ValueError(f"input type {spec.type} has no attributed space")  # make_encoder refused it


def _all(rows: int, count: int) -> torch.Tensor:
    return torch.ones(rows, count, dtype=torch.bool)


def _patches(height: int, width: int, first: int) -> tuple[torch.Tensor, int]:
    """(1, 1, H, W) patch ids in row-major order, and how many patches."""
    side = max(1, math.ceil(max(height, width) / PATCHES_PER_SIDE))
    rows = torch.arange(height) // side
    columns = torch.arange(width) // side
    across = math.ceil(width / side)
    ids = rows.view(-1, 1) * across + columns.view(1, -1)  # (H, W)
    return (first + ids).view(1, 1, height, width), int(ids.max()) + 1


class AttributedModel(nn.Module):
    """A FeatureModel as a function of the attributed tensors, for one output.

    forward(*values, *extras) returns category logits (B, K); a binary output's logit as
    (B, 2) = [-logit, logit], so that explaining the negative value is the mirror of the
    positive one; a number output's prediction in the target's units (B,).
    """

    def __init__(self, model: FeatureModel, specs: list[InputSpec], output: OutputSpec) -> None:
        super().__init__()
        self.model = model
        self.types = [spec.type for spec in specs]
        self.output = output

    def forward(self, *args: torch.Tensor | None) -> torch.Tensor:
        count = len(self.types)
        values, extras = args[:count], args[count:]
        encoded = []
        for encoder, kind, x, extra in zip(
            self.model.encoders, self.types, values, extras, strict=True
        ):
            assert x is not None
            if kind == "category":
                encoded.append(x)  # the embedding is the category's whole encoder
            elif isinstance(encoder, TextEncoder):
                assert extra is not None
                encoded.append(encoder.from_embeddings(x, extra))
            elif kind == "sequence":
                assert extra is not None
                encoded.append(encoder(torch.stack([x, extra], dim=-1)))  # (B, L, 2)
            else:
                encoded.append(encoder(x))
        return explained_output(self.model.decode_features(encoded)[self.output.name], self.output)


def explained_output(out: torch.Tensor, output: OutputSpec, squeeze: bool = False) -> torch.Tensor:
    """A model's output as explained: category logits (B, K) as they are; a binary logit (B,)
    as (B, 2) = [-logit, logit]; a number (B,) in the target's units. `squeeze`: the binary
    logit or number comes as (B, 1)."""
    if squeeze and output.type != "category":
        out = out.squeeze(-1)
    if output.type == "binary":
        return torch.stack([-out, out], dim=-1)  # (B, 2)
    if output.type == "number":
        return out * output.std + output.mean  # (B,)
    return out  # (B, K)
