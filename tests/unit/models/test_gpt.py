"""GPT: the shared checks on next-token logits, causality, and the KV cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from megalith.data.specs import OutputSpec
from megalith.data.tokenizers import EOS
from megalith.errors import ConfigError
from megalith.generation import Sampling, generate_ids
from megalith.models import GPTConfig, build_model
from megalith.models.gpt import GPT

TEXT = OutputSpec("text", "text", num_classes=40)
CONFIG = GPTConfig(context=16, layers=2, heads=2, dim=32, dropout=0.0)


def make_gpt(config: GPTConfig = CONFIG) -> GPT:
    torch.manual_seed(0)
    model = build_model(config, [], [TEXT])
    assert isinstance(model, GPT)
    return model


def test_logits_for_every_position_and_a_falling_loss() -> None:
    model = make_gpt()
    tokens = torch.randint(4, 40, (8, 17), generator=torch.Generator().manual_seed(1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    logits = model({"text": x})["text"]
    assert logits.shape == (8, 16, 40)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model({"text": x})["text"].flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_position_never_sees_later_tokens() -> None:
    model = make_gpt().eval()
    tokens = torch.randint(4, 40, (1, 12), generator=torch.Generator().manual_seed(2))
    changed = tokens.clone()
    changed[0, 8:] = 5
    with torch.no_grad():
        before, after = model({"text": tokens})["text"], model({"text": changed})["text"]
    torch.testing.assert_close(before[:, :8], after[:, :8])
    assert not torch.allclose(before[:, 8:], after[:, 8:])


def test_tied_weights_are_saved_once() -> None:
    tied, untied = make_gpt(), make_gpt(CONFIG.model_copy(update={"tie_weights": False}))
    assert "head.weight" not in tied.state_dict()
    assert untied.state_dict()["head.weight"].shape == (40, 32)


def test_cached_decoding_matches_the_full_forward() -> None:
    model = make_gpt().eval()
    tokens = torch.randint(4, 40, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full, _ = model.decode(tokens)
        first, caches = model.decode(tokens[:, :6])
        pieces = [first]
        for position in range(6, 10):
            step, caches = model.decode(tokens[:, position : position + 1], caches, position)
            pieces.append(step)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prompt", [[7, 9, 11], []])
def test_greedy_generation_is_the_same_with_and_without_the_cache(prompt: list[int]) -> None:
    model = make_gpt()
    greedy = Sampling(temperature=0)
    # 40 tokens with a context of 16: the window restarts twice along the way
    cached = list(generate_ids(model, prompt, 40, greedy, stop_at_end=False))
    uncached = list(generate_ids(model, prompt, 40, greedy, use_cache=False, stop_at_end=False))
    assert len(cached) == 40
    assert cached == uncached


def test_sampling_follows_the_seed_and_the_filters() -> None:
    model = make_gpt()
    sample = Sampling(temperature=1.0, top_k=3)
    first = list(generate_ids(model, [7], 20, sample, seed=5, stop_at_end=False))
    again = list(generate_ids(model, [7], 20, sample, seed=5, stop_at_end=False))
    other = list(generate_ids(model, [7], 20, sample, seed=6, stop_at_end=False))
    assert first == again and first != other


def test_top_k_and_top_p_keep_only_the_likeliest_tokens() -> None:
    logits = torch.tensor([4.0, 3.0, 2.0, -5.0, -6.0])
    generator = torch.Generator().manual_seed(0)
    picks = {Sampling(1.0, top_k=2).pick(logits, generator) for _ in range(200)}
    assert picks == {0, 1}
    # probabilities ~ 0.67, 0.24, 0.09, ...: p = 0.8 keeps the first two
    picks = {Sampling(1.0, top_p=0.8).pick(logits, generator) for _ in range(200)}
    assert picks == {0, 1}
    assert Sampling(0).pick(logits, generator) == 0


def test_generation_stops_at_the_end_of_text() -> None:
    model = make_gpt()
    with torch.no_grad():  # the final norm outputs all ones; EOS's (tied) row is all tens
        model.norm.weight.zero_()
        model.norm.bias.fill_(1.0)
        model.embedding.weight[EOS] = 10.0
    assert list(generate_ids(model, [7], 10, Sampling(temperature=0))) == []


def test_gpt_rejects_inputs_and_non_text_outputs() -> None:
    with pytest.raises(ConfigError, match="one text column"):
        build_model(CONFIG, [], [OutputSpec("y", "category", num_classes=3)])
    with pytest.raises(ConfigError, match="multiple of heads"):
        build_model(GPTConfig(dim=30, heads=4), [], [TEXT])


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    from megalith.models.blocks import enable_activation_checkpointing

    tokens = torch.randint(4, 40, (4, 17), generator=torch.Generator().manual_seed(5))
    config = CONFIG.model_copy(update={"dropout": 0.2})  # recomputed dropout must match too
    grads = []
    for recompute in (False, True):
        model = make_gpt(config)
        if recompute:
            assert enable_activation_checkpointing(model) == 2
        torch.manual_seed(7)
        logits = model({"text": tokens[:, :-1]})["text"]
        F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
