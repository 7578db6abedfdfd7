"""Explaining a pretrained (Hugging Face) text classifier: attributions over its own token
embeddings, and attention maps from the model's own attention weights.

The model's word-embedding layer (`get_input_embeddings`) turns the run's token ids into the
attributed tensor (B, L, D), as a text input's embedding does for the other families; the model
then runs from there (`inputs_embeds`, with its own position embeddings and attention mask).
The baseline is zero embeddings at every real token (the padding keeps its own embedding, so it
is never attributed nor removed). Each token position is a unit; word pieces are merged back into
words by the tokenizer's offsets (mapping.py).

Attention maps are the model's own: transformers returns them (`output_attentions`) from its
eager attention, which computes the same softmax(Q K^T / sqrt(d)) as the fused kernel it runs
by default; explain switches the model to it for that one forward pass and back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.explain.attention import AttentionMap
from megalith.explain.space import AttributedModel, InputSpace, explained_output, input_spaces
from megalith.models.blocks import FeatureModel
from megalith.models.pretrained import PretrainedModel


class PretrainedForward(nn.Module):
    """A pretrained classifier as a function of its token embeddings (B, L, D) and the run's
    token ids (B, L) (0 = padding, for the attention mask): the explained output as
    space.AttributedModel gives it."""

    def __init__(self, model: PretrainedModel, output: OutputSpec) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, embeddings: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        assert ids is not None
        real = ids != 0
        net: Any = self.model.net
        logits = net(inputs_embeds=embeddings, attention_mask=real.long()).logits  # (B, K)
        return explained_output(logits, self.output, squeeze=True)


def pretrained_spaces(
    model: PretrainedModel, specs: list[InputSpec], encoded: dict[str, np.ndarray]
) -> list[InputSpace]:
    """The one text input as its token embeddings, units one per token position."""
    (spec,) = specs
    ids = torch.as_tensor(encoded[spec.name])  # (B, L)
    model_ids, real = model.model_ids(ids)
    net: Any = model.net
    with torch.no_grad():
        values = net.get_input_embeddings()(model_ids)  # (B, L, D)
    baseline = torch.where(real.unsqueeze(-1), torch.zeros_like(values), values)
    units = torch.arange(ids.shape[1]).view(1, -1, 1)
    return [InputSpace(spec, values, baseline, ids, units, real)]


@contextmanager
def eager_attention(net: Any) -> Iterator[None]:
    """The model on transformers' eager attention (which returns its weights), then back."""
    base = net.get_base_model() if hasattr(net, "get_base_model") else net
    before = base.config._attn_implementation
    base.set_attn_implementation("eager")
    try:
        yield
    finally:
        base.set_attn_implementation(before)


def pretrained_attention(
    model: PretrainedModel,
    specs: list[InputSpec],
    tokenizer: Any,
    encoded: dict[str, np.ndarray],
    rows: list[Any],
) -> list[AttentionMap]:
    """Each row's attention maps (layers, heads, T, T) over its real tokens, the model's own."""
    (spec,) = specs
    ids = torch.as_tensor(encoded[spec.name])
    model_ids, real = model.model_ids(ids)
    net: Any = model.net
    with eager_attention(net), torch.no_grad():
        found = net(input_ids=model_ids, attention_mask=real.long(), output_attentions=True)
    weights = torch.stack(list(found.attentions), dim=1)  # (B, layers, heads, T, T)
    maps = []
    for i, row in enumerate(rows):
        kept = real[i].nonzero().flatten()
        tokens = [_piece(tokenizer, int(t)) for t in ids[i, kept]]
        chosen = weights[i][..., kept, :][..., kept]
        maps.append(AttentionMap(row, spec.name, tokens, chosen.float().numpy()))
    return maps


def _piece(tokenizer: Any, token: int) -> str:
    """A run token id (the model's id + 1) as the model's own piece ([CLS], ##ing, ...)."""
    piece = tokenizer.tokenizer.id_to_token(token - 1)
    return str(piece) if piece is not None else f"#{token}"


def forward_for(model: nn.Module, specs: list[InputSpec], output: OutputSpec) -> nn.Module:
    """The explained output as a function of the attributed tensors, for either family."""
    if isinstance(model, PretrainedModel):
        return PretrainedForward(model, output).eval()
    assert isinstance(model, FeatureModel)  # check_supported said so
    return AttributedModel(model, specs, output).eval()


def spaces_for(
    model: nn.Module, specs: list[InputSpec], encoded: dict[str, np.ndarray]
) -> list[InputSpace]:
    """The attributed tensors of encoded inputs, for either family (space.input_spaces)."""
    if isinstance(model, PretrainedModel):
        return pretrained_spaces(model, specs, encoded)
    assert isinstance(model, FeatureModel)
    return input_spaces(model, specs, encoded)
