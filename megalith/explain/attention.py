"""Attention maps: per layer and head, how much each token (query) attended to each other token
(key), from the model's own attention modules, for the text / sequence Transformer encoder,
the Vision Transformer (tokens: the class token, then the image's patches row by row) and GPT.

The model's attention runs through `F.scaled_dot_product_attention`, which returns no weights. So
the weights are recomputed beside it, on the explain path only: a forward hook on each
`megalith.models.attention.Attention` module takes the module's own input, its own query
projection and the keys it returned, and computes softmax(Q K^T / sqrt(d_head)) with the same
padding and causal masks (Vaswani et al. 2017, "Attention Is All You Need", eq. 1). The hook only
reads: the model's outputs are unchanged, and training never sees it. Multiplying the recorded
weights by the module's values reproduces its output (tests/unit/explain/test_attention.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from megalith.data.tokenizers import SPECIAL_TOKENS
from megalith.models.attention import Attention
from megalith.models.blocks import FeatureModel, ImageEncoder, SequenceValuesEncoder, TextEncoder
from megalith.models.sequence import TransformerEncoder
from megalith.models.vit import VisionTransformer

if TYPE_CHECKING:
    from megalith.data.specs import InputSpec
    from megalith.data.tokenizers import Tokenizer


@dataclass
class AttentionMap:
    """One row's attention over one input: `weights` (layers, heads, T, S) float32, each query
    row summing to 1 over the keys (padding dropped), the T query `tokens` as labels, and for
    cross-attention (a seq2seq output looking at its source) the S `keys` (None: the same
    tokens as the queries, self-attention)."""

    row: Any
    input: str
    tokens: list[str]
    weights: np.ndarray
    keys: list[str] | None = None

    def as_json(self, digits: int = 4) -> dict[str, Any]:
        """The compact form written to attention.jsonl: per layer, the mean over heads (T, S)."""
        mean = self.weights.mean(axis=1).round(digits)  # (layers, T, S)
        return {
            "row": self.row,
            "input": self.input,
            "tokens": self.tokens,
            **({"keys": self.keys} if self.keys is not None else {}),
            "heads": int(self.weights.shape[1]),
            "mean_over_heads": mean.tolist(),
        }


def attention_weights(
    module: Attention, x: torch.Tensor, options: dict[str, Any], keys: torch.Tensor
) -> torch.Tensor:
    """The weights (B, heads, T, S) `module` used on input x (B, T, D) with the keyword
    arguments of its call (mask, causal, cache) and the keys (B, heads, S, d_head) it returned."""
    b, t, d = x.shape
    heads = module.heads
    q = module.query(x).view(b, t, heads, d // heads).transpose(1, 2)  # (B, H, T, hd)
    scores = q @ keys.transpose(-2, -1) / math.sqrt(d // heads)  # (B, H, T, S)
    allowed = torch.ones_like(scores, dtype=torch.bool)
    mask = options.get("mask")
    if mask is not None:
        allowed = allowed & mask
    cache = options.get("cache")
    if options.get("causal", False) and (cache is None or t > 1):
        s = keys.shape[2]
        # as Attention.forward: with a cache, the new queries see every cached key
        allowed = allowed & torch.ones(t, s, dtype=torch.bool, device=x.device).tril(s - t)
    return scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)


@contextmanager
def recorded_attention(modules: list[Attention]) -> Iterator[list[list[torch.Tensor]]]:
    """While the block runs, every call of each module appends its weights (B, H, T, S) to
    that module's list (in the order given)."""
    found: list[list[torch.Tensor]] = [[] for _ in modules]

    def hook_for(index: int) -> Any:
        def hook(
            module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
        ) -> None:
            assert isinstance(module, Attention)
            with torch.no_grad():  # cross-attention: the keys it returned are the context's
                weights = attention_weights(module, args[0], kwargs, output[1][0])
            found[index].append(weights.detach().float().cpu())

        return hook

    handles = [
        module.register_forward_hook(hook_for(i), with_kwargs=True)
        for i, module in enumerate(modules)
    ]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def encoder_attention(model: FeatureModel) -> dict[int, list[Attention]]:
    """The self-attention modules of each input whose sequence encoder is a Transformer, by the
    input's position, first layer first."""
    layers = {}
    for position, encoder in enumerate(model.encoders):
        if isinstance(encoder, TextEncoder | SequenceValuesEncoder) and isinstance(
            encoder.sequence, TransformerEncoder
        ):
            layers[position] = attention_modules(encoder.sequence.blocks)
        elif isinstance(encoder, ImageEncoder) and isinstance(encoder.backbone, VisionTransformer):
            layers[position] = attention_modules(encoder.backbone.blocks)
    return layers


def attention_modules(blocks: nn.ModuleList, kind: str = "attention") -> list[Attention]:
    """The self-attention module of each TransformerBlock in `blocks` (kind "cross": their
    cross-attention modules)."""
    modules = [getattr(block, kind) for block in blocks]
    assert all(isinstance(m, Attention) for m in modules)
    return modules


def feature_attention(
    model: FeatureModel,
    specs: list[InputSpec],
    input_encoders: list[Any],
    encoded: dict[str, np.ndarray],
    labels: list[Any],
    texts: dict[str, list[str]] | None = None,
) -> list[AttentionMap]:
    """Attention maps of every Transformer-encoded input (text or number sequence) for the
    encoded rows (one forward pass), one per row and input, restricted to the real tokens.
    `texts` (each text column's cells, in row order) names a hashed text's tokens by the words
    hashed, which the bucket ids cannot give back."""
    layers = encoder_attention(model)
    if not layers:
        return []
    modules = [module for position in sorted(layers) for module in layers[position]]
    with recorded_attention(modules) as found, torch.no_grad():
        model({k: torch.as_tensor(v) for k, v in encoded.items()})
    maps, index = [], 0
    for position in sorted(layers):
        spec, count = specs[position], len(layers[position])
        stacked = torch.stack([calls[0] for calls in found[index : index + count]], dim=1)
        index += count  # stacked: (B, layers, heads, T, T)
        array = encoded[spec.name]
        for i, label in enumerate(labels):
            if spec.type == "image":  # a Vision Transformer: the class token, then patches
                encoder = model.encoders[position]
                assert isinstance(encoder, ImageEncoder)
                assert isinstance(encoder.backbone, VisionTransformer)
                tokens = encoder.backbone.token_labels()
                maps.append(AttentionMap(label, spec.name, tokens, stacked[i].numpy()))
                continue
            if spec.type == "text":
                ids = [int(t) for t in array[i]]
                real = [p for p, token in enumerate(ids) if token != 0 or p == 0]
                tokenizer = input_encoders[position].tokenizer
                cells = (texts or {}).get(spec.name)
                if getattr(tokenizer, "kind", None) == "hash" and cells is not None:
                    tokens = hashed_labels(tokenizer, cells[i], ids, real)
                else:
                    tokens = [token_label(tokenizer, ids[p]) for p in real]
            else:  # a number sequence: (L, 2) value and mask; a step is labelled by its number
                real = [p for p in range(array.shape[1]) if array[i, p, 1] > 0.5 or p == 0]
                tokens = [str(p) for p in real]
            kept = stacked[i][:, :, real][:, :, :, real]  # the model gave padding keys 0
            maps.append(AttentionMap(label, spec.name, tokens, kept.numpy()))
    return maps


def hashed_labels(tokenizer: Any, text: str, ids: list[int], real: list[int]) -> list[str]:
    """A hashed text's tokens at positions `real` of `ids`, named by the words and n-grams of
    `text` in the order they were hashed (`#id` where a word does not give that bucket)."""
    words = iter(tokenizer.split(text))
    named = []
    for position in real:
        token = ids[position]
        if token < len(SPECIAL_TOKENS):
            named.append(SPECIAL_TOKENS[token])
            continue
        word = next(words, None)
        named.append(word if word is not None and tokenizer.bucket(word) == token else f"#{token}")
    return named


def token_label(tokenizer: Tokenizer, token: int) -> str:
    """A token id as text: the token itself, or [PAD] / [UNK] / [BOS] / [EOS]."""
    if token < len(SPECIAL_TOKENS):
        return SPECIAL_TOKENS[token]
    return tokenizer.decode([token]) or f"#{token}"
