"""What megalith compress refuses before any work, and what it says to do instead."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from megalith.compress import _check_compressible
from megalith.compress.settings import validate_settings
from megalith.config import load_config
from megalith.errors import ConfigError, RunError

GPT = {
    "data": {"source": "builtin:python_stdlib"},
    "inputs": [],
    "outputs": [{"name": "text", "type": "text"}],
    "model": {"arch": "gpt", "layers": 1, "dim": 32, "heads": 2, "context": 16},
}
SEQ2SEQ = {
    "data": {"source": "builtin:number_words"},
    "inputs": [{"name": "number", "type": "text", "tokenizer": "char"}],
    "outputs": [{"name": "words", "type": "text", "tokenizer": "word", "vocab_size": 64}],
    "model": {"arch": "seq2seq", "layers": 1, "dim": 32, "heads": 2},
}


@pytest.mark.parametrize(("config", "family"), [(GPT, "a language model"), (SEQ2SEQ, "seq2seq")])
def test_a_language_model_or_seq2seq_run_is_told_to_distil_a_student(
    config: dict[str, Any], family: str
) -> None:
    cfg, _ = load_config(config)
    run: Any = SimpleNamespace(path=Path("runs/r"), config=cfg)
    with pytest.raises(RunError, match=rf"{family}.*megalith train student.yaml --teacher runs/r"):
        _check_compressible(run)


def test_steps_in_a_yaml_block_may_be_one_string_as_on_the_command_line() -> None:
    assert validate_settings({"steps": "prune, quantize"}, "compress").steps == [
        "prune",
        "quantize",
    ]
    with pytest.raises(ConfigError, match=r"compress\.finetune_epochs"):
        validate_settings({"finetune_epochs": 0}, "compress")
