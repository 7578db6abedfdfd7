"""Recorded attention maps are the model's own: row-stochastic, causal for GPT, zero on padding,
and the recorded weights times the module's values give back the module's output."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.data.specs import InputSpec, OutputSpec
from megalith.explain.attention import feature_attention, recorded_attention
from megalith.models.attention import Attention
from megalith.models.blocks import FeatureModel
from megalith.models.gpt import GPT, GPTConfig
from megalith.models.mlp import MLPConfig
from megalith.models.registry import build_model
from megalith.models.seq2seq import Seq2Seq, Seq2SeqConfig

TRANSFORMER = SequenceEncoderConfig(kind="transformer", layers=2, heads=2)
INPUTS = [
    InputSpec("size", "number"),
    InputSpec("review", "text", vocab_size=30, shape=(6,), embedding_dim=8, encoder=TRANSFORMER),
    InputSpec("series", "sequence", shape=(5, 2), embedding_dim=8, encoder=TRANSFORMER),
]
OUTPUTS = [OutputSpec("label", "category", num_classes=3)]


class _Words:
    """A stand-in tokenizer: id i is the word w{i}."""

    def decode(self, ids: list[int]) -> str:
        return " ".join(f"w{i}" for i in ids)


class _TextInput:
    tokenizer = _Words()


def _feature_model() -> FeatureModel:
    torch.manual_seed(0)
    model = build_model(MLPConfig(hidden=[8]), INPUTS, OUTPUTS)
    assert isinstance(model, FeatureModel)
    return model.eval()


def _encoded() -> dict[str, np.ndarray]:
    tokens = np.array([[5, 6, 7, 0, 0, 0], [8, 9, 10, 11, 12, 13], [0, 0, 0, 0, 0, 0]])
    series = np.zeros((3, 5, 2), dtype=np.float32)
    series[:, :, 0] = np.random.default_rng(0).normal(size=(3, 5))
    series[0, :4, 1] = 1  # 4 real steps, then one padding step
    series[1:, :, 1] = 1
    return {
        "size": np.array([0.5, -1.0, 2.0], dtype=np.float32),
        "review": tokens,
        "series": series,
    }


def _output_from_weights(module: Attention, weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The module's output recomputed from recorded weights (B, H, T, S) and its own values."""
    b, t, d = x.shape
    kv = module.key_value(x).view(b, t, 2, module.heads, d // module.heads)
    v = kv.permute(2, 0, 3, 1, 4)[1]  # (B, H, S, hd)
    return module.out((weights @ v).transpose(1, 2).reshape(b, t, d))


def test_encoder_maps_sum_to_one_skip_padding_and_leave_outputs_unchanged() -> None:
    model, encoded = _feature_model(), _encoded()
    batch = {k: torch.as_tensor(v) for k, v in encoded.items()}
    with torch.no_grad():
        before = model(batch)["label"]
    maps = feature_attention(model, INPUTS, [None, _TextInput(), None], encoded, ["a", "b", "c"])
    with torch.no_grad():
        after = model(batch)["label"]
    assert torch.equal(before, after)  # the hooks are gone and changed nothing
    assert [(m.row, m.input) for m in maps] == [
        ("a", "review"), ("b", "review"), ("c", "review"),
        ("a", "series"), ("b", "series"), ("c", "series"),
    ]  # fmt: skip
    first = maps[0]
    assert first.tokens == ["w5", "w6", "w7"]  # the padding is dropped
    assert first.weights.shape == (2, 2, 3, 3)  # (layers, heads, T, T)
    assert maps[2].tokens == ["[PAD]"]  # an empty text keeps position 0, as the model does
    assert maps[3].tokens == ["0", "1", "2", "3"]
    for found in maps:
        np.testing.assert_allclose(found.weights.sum(axis=-1), 1.0, atol=1e-5)
        assert (found.weights >= 0).all()


def _keep(seen: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """A forward hook keeping each call's input and output (returns None: changes nothing)."""

    def hook(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        seen.append((args[0], output[0]))

    return hook


def test_padding_keys_get_no_weight_and_weights_reproduce_the_layer_output() -> None:
    model = _feature_model()
    encoder = model.encoders[1].sequence  # the text input's TransformerEncoder
    block = encoder.blocks[0]
    tokens = torch.tensor([[5, 6, 7, 0, 0, 0]])
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    handle = block.attention.register_forward_hook(_keep(seen))
    try:
        with recorded_attention([block.attention]) as found, torch.no_grad():
            model.encoders[1](tokens)
    finally:
        handle.remove()
    weights = found[0][0]  # (1, heads, 6, 6)
    assert torch.all(weights[..., 3:] == 0)  # padding keys
    with torch.no_grad():
        rebuilt = _output_from_weights(block.attention, weights, seen[0][0])
    torch.testing.assert_close(rebuilt, seen[0][1], atol=1e-5, rtol=1e-4)


def _gpt() -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(context=16, layers=2, heads=2, dim=8, dropout=0.0)
    return GPT(config, OutputSpec("text", "text", num_classes=20)).eval()


def test_gpt_maps_are_causal_and_reproduce_every_layer_with_and_without_a_cache() -> None:
    model = _gpt()
    tokens = torch.tensor([[4, 5, 6, 7, 8, 9]])
    modules = [block.attention for block in model.blocks]
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    handles = [m.register_forward_hook(_keep(seen)) for m in modules]
    try:
        with recorded_attention(modules) as found, torch.no_grad():
            logits, caches = model.decode(tokens)
            model.decode(torch.tensor([[10, 11]]), caches, start=6)  # 2 new tokens
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        again, _ = model.decode(tokens)
    assert torch.equal(logits, again)
    for layer, module in enumerate(modules):
        full, cached = found[layer]  # (1, H, 6, 6) and (1, H, 2, 8)
        assert torch.all(full.triu(diagonal=1) == 0)  # nothing from later tokens
        torch.testing.assert_close(full.sum(-1), torch.ones(1, 2, 6))
        assert cached.shape == (1, 2, 2, 8) and cached[..., 0, 7].eq(0).all()  # causal in cache
        torch.testing.assert_close(cached.sum(-1), torch.ones(1, 2, 2))
        x, out = seen[layer]
        with torch.no_grad():
            rebuilt = _output_from_weights(module, full, x)
        torch.testing.assert_close(rebuilt, out, atol=1e-5, rtol=1e-4)


def test_seq2seq_cross_attention_skips_source_padding_and_reproduces_the_layer() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(
        Seq2SeqConfig(layers=1, heads=2, dim=8, dropout=0.0),
        InputSpec("word", "text", vocab_size=20, shape=(6,)),
        OutputSpec("reversed", "text", num_classes=20, shape=(8,)),
    ).eval()
    cross = model.decoder[0].cross
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def keep(module: torch.nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        seen.append((args[0], kwargs["context"], output[0]))

    handle = cross.register_forward_hook(keep, with_kwargs=True)
    try:
        with recorded_attention([cross]) as found, torch.no_grad():
            memory, mask = model.encode(torch.tensor([[5, 6, 7, 0, 0, 0]]))
            model.decode(torch.tensor([[2, 8, 9]]), memory, mask)
    finally:
        handle.remove()
    weights = found[0][0]  # (1, heads, 3 written, 6 source)
    assert weights.shape == (1, 2, 3, 6) and torch.all(weights[..., 3:] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2, 3))
    x, context, out = seen[0]
    b, t, d = x.shape
    kv = cross.key_value(context).view(b, context.shape[1], 2, cross.heads, d // cross.heads)
    v = kv.permute(2, 0, 3, 1, 4)[1]  # (B, H, S, hd): the context's values
    with torch.no_grad():
        rebuilt = cross.out((weights @ v).transpose(1, 2).reshape(b, t, d))
    torch.testing.assert_close(rebuilt, out, atol=1e-5, rtol=1e-4)
