"""Pretrained Hugging Face models: the shared model check for classifiers (full and LoRA),
what the saved state holds, the language model's KV cache, and activation checkpointing."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from model_check import check_model, random_batch
from pretrained_models import save_tiny_bert, save_tiny_gpt2, topic_table

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.generation import Sampling, generate_ids
from megalith.models import LoRAConfig, PretrainedConfig, build_model
from megalith.models.pretrained import PretrainedModel

TEXTS = topic_table(120).text.tolist()


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("bert"), TEXTS)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gpt2(tmp_path_factory.mktemp("gpt2"), TEXTS)


def text_spec(folder: Path, length: int = 12) -> InputSpec:
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(folder)) + 1  # ids moved up by one
    return InputSpec(name="text", type="text", vocab_size=vocab, shape=(length,))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize(
    "output",
    [
        OutputSpec(name="y", type="category", num_classes=3),
        OutputSpec(name="y", type="binary", num_classes=2),
        OutputSpec(name="y", type="number"),
    ],
    ids=lambda spec: spec.type,
)
def test_classifier_passes_the_model_check(bert: Path, output: OutputSpec, lora: bool) -> None:
    config = PretrainedConfig(
        path=str(bert), lora=LoRAConfig(rank=4, target_modules="all-linear") if lora else None
    )
    spec = text_spec(bert)
    inputs, targets = random_batch([spec], [output])
    lr = 1e-2 if lora else 3e-3  # adapters start at zero and usually take a larger rate
    check_model(lambda: build_model(config, [spec], [output]), inputs, targets, [output], lr=lr)


def test_lora_saves_and_trains_only_the_adapters_and_head(bert: Path) -> None:
    output = OutputSpec(name="y", type="category", num_classes=3)
    config = PretrainedConfig(path=str(bert), lora=LoRAConfig(rank=4))
    model = build_model(config, [text_spec(bert)], [output])
    saved = set(model.state_dict())
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert saved == trainable
    assert all("lora_" in name or "classifier" in name for name in saved), sorted(saved)
    # peft's default for BERT adapts the query and value projections
    assert any("query.lora_A" in name for name in saved)
    assert any("value.lora_A" in name for name in saved)
    assert not any("key.lora_A" in name for name in saved)


def test_full_fine_tune_saves_tied_weights_once(gpt2: Path) -> None:
    output = OutputSpec(name="text", type="text", num_classes=401)
    model = build_model(PretrainedConfig(path=str(gpt2)), [], [output])
    state = model.state_dict()
    assert "net.transformer.wte.weight" in state
    assert "net.lm_head.weight" not in state  # the same tensor: safetensors keeps one name
    fresh = build_model(PretrainedConfig(path=str(gpt2)), [], [output])
    with torch.no_grad():
        fresh.net.transformer.wte.weight.add_(1.0)
    fresh.load_state_dict(state)  # strict: the tied name left out is accepted
    assert torch.equal(fresh.net.lm_head.weight, model.net.lm_head.weight)


def test_language_model_logits_cover_megalith_ids(gpt2: Path) -> None:
    """Logits (B, T, V + 1): column k is the model's token k - 1; column 0 (padding) is never
    the likeliest."""
    output = OutputSpec(name="text", type="text", num_classes=401)
    model = build_model(PretrainedConfig(path=str(gpt2)), [], [output]).eval()
    tokens = torch.tensor([[5, 9, 30, 44]])
    with torch.no_grad():
        ours = model({"text": tokens})["text"]
        theirs = model.net(input_ids=tokens - 1).logits
    assert ours.shape == (1, 4, theirs.shape[-1] + 1)
    torch.testing.assert_close(ours[..., 1:], theirs)
    assert (ours.argmax(-1) > 0).all()


def test_greedy_generation_is_the_same_with_and_without_the_cache(gpt2: Path) -> None:
    output = OutputSpec(name="text", type="text", num_classes=401)
    config = PretrainedConfig(path=str(gpt2), context=16)
    torch.manual_seed(0)
    model = build_model(config, [], [output])
    assert isinstance(model, PretrainedModel) and model.context == 16
    greedy = Sampling(temperature=0)
    prompt = [5, 9, 30]
    # 40 new tokens in a 16-token window: the window restarts twice
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached = list(generate_ids(model, prompt, 40, greedy, use_cache=True, stop_at_end=False))
        full = list(generate_ids(model, prompt, 40, greedy, use_cache=False, stop_at_end=False))
    assert cached == full
    # the cache goes by the name this transformers takes: no deprecation warning per token
    assert not [w for w in caught if "past_key_values" in str(w.message)]
    assert len(cached) == 40


def test_activation_checkpointing_gives_the_same_gradients(bert: Path) -> None:
    output = OutputSpec(name="y", type="category", num_classes=3)
    spec = text_spec(bert)
    inputs, targets = random_batch([spec], [output])
    grads = []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = build_model(PretrainedConfig(path=str(bert)), [spec], [output])
        model.recompute = recompute
        model.train()
        torch.manual_seed(1)  # the same dropout masks
        loss = torch.nn.functional.cross_entropy(model(inputs)["y"], targets["y"])
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.net.modules())
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_bad_model_directories_are_config_errors(tmp_path: Path, bert: Path) -> None:
    output = OutputSpec(name="y", type="category", num_classes=3)
    spec = text_spec(bert)
    with pytest.raises(ConfigError, match="is not a directory"):
        build_model(PretrainedConfig(path=str(tmp_path / "missing")), [spec], [output])
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((bert / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ConfigError, match="pickle files Megalith never loads"):
        build_model(PretrainedConfig(path=str(pickled)), [spec], [output])
    with pytest.raises(ConfigError, match=r"model\.lora\.target_modules"):
        config = PretrainedConfig(path=str(bert), lora=LoRAConfig(target_modules=["no_such"]))
        build_model(config, [spec], [output])
    with pytest.raises(ConfigError, match="64 positions"):
        build_model(PretrainedConfig(path=str(bert)), [text_spec(bert, 100)], [output])


def test_pretrained_tokenizer_moves_ids_up_and_keeps_the_closing_token(bert: Path) -> None:
    from transformers import AutoTokenizer

    from megalith.data.tokenizers import PretrainedTokenizer, tokenizer_from_state

    theirs = AutoTokenizer.from_pretrained(bert)
    ours = PretrainedTokenizer.load(str(bert), special_tokens=True)
    text = "the team scored a goal after the storm"
    assert ours.encode([text])[0] == [i + 1 for i in theirs(text)["input_ids"]]
    assert ours.decode(ours.encode([text])[0]) == text
    ours.truncate_to(4)
    cut = ours.encode([text])[0]
    assert len(cut) == 4 and cut[-1] == theirs.sep_token_id + 1  # [CLS] two words [SEP]
    again = tokenizer_from_state(ours.state())
    assert again.encode([text])[0] == [i + 1 for i in theirs(text)["input_ids"]]  # uncut
    assert ours.vocab_size == len(theirs) + 1


def test_config_gives_text_features_the_model_tokenizer() -> None:
    from megalith.config import load_config

    base = {
        "data": {"source": "t.csv"},
        "inputs": [{"name": "text", "type": "text"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "pretrained", "path": "models/tiny"},
    }
    cfg, _ = load_config(base)
    assert cfg.inputs[0].tokenizer == "pretrained"
    assert cfg.inputs[0].tokenizer_path == "models/tiny"
    two = {**base, "inputs": [*base["inputs"], {"name": "n", "type": "number"}]}
    with pytest.raises(ConfigError, match="reads one text input"):
        load_config(two)
    seq2seq = {
        **base,
        "outputs": [{"name": "out", "type": "text", "tokenizer": "pretrained"}],
        "model": {"arch": "seq2seq"},
    }
    with pytest.raises(ConfigError, match="seq2seq fits its own target tokenizer"):
        load_config(seq2seq)
    with pytest.raises(ConfigError, match="tokenizer_path is read only with"):
        load_config(
            {
                **base,
                "inputs": [{"name": "text", "type": "text", "tokenizer_path": "x"}],
                "model": {"arch": "mlp"},
            }
        )


def test_a_corpus_tokenizer_needs_an_end_token(bert: Path) -> None:
    import pandas as pd

    from megalith.data.features.text import TextOutput, TextOutputEncoder

    config = TextOutput(name="text", tokenizer="pretrained", tokenizer_path=str(bert))
    with pytest.raises(ConfigError, match="no end-of-text token"):
        TextOutputEncoder(config).fit(pd.Series(["the team"]), where="corpus")
