"""`megalith init --pretrained` on a corpus: the window it writes fits the model's positions
(a 64-position GPT-2 was given context 256, which training then refused), and the notes name
the pretrained model, not a gpt one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from megalith.data.infer_text import infer_language_model, model_positions, with_pretrained
from megalith.data.sources import Table


def _corpus() -> Table:
    texts = [f"line {i} of the corpus\nand another line" for i in range(6)]
    return Table(pd.DataFrame({"text": texts}), base_dir=None, origin="corpus")


def test_the_window_is_capped_at_the_model_s_positions(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 64}))
    inference = infer_language_model(_corpus(), source="corpus", folder=True)
    made = with_pretrained(inference, "gpt2", tmp_path)
    assert made.config["model"]["context"] == 64
    assert not any("model.arch gpt)" in n or "dim, layers" in n for n in made.notices)
    assert any("model.arch pretrained" in n for n in made.notices)


def test_a_longer_model_keeps_256_and_an_unreadable_folder_is_left_to_training(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}))
    inference = infer_language_model(_corpus(), source="corpus", folder=True)
    assert with_pretrained(inference, "m", tmp_path).config["model"]["context"] == 256
    assert model_positions(tmp_path / "missing") is None
    (tmp_path / "config.json").write_text("[1, 2]")
    assert model_positions(tmp_path) is None
