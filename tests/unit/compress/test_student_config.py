"""The student `distill_run` builds: every width scaled, layers kept, heads still dividing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from torch import nn

from megalith.compress.distill import student_config
from megalith.config import validate_config
from megalith.errors import ConfigError
from megalith.run import Run


def _teacher(**config: Any) -> Run:
    base = {"data": {"source": "table.csv"}, "outputs": [{"name": "y", "type": "category"}]}
    return Run(Path("runs/teacher"), validate_config({**base, **config}), None, nn.Linear(1, 1))  # type: ignore[arg-type]


def test_cnn_widths_are_halved_and_the_split_pinned() -> None:
    teacher = _teacher(
        seed=3,
        inputs=[{"name": "image", "type": "image"}],
        model={"arch": "cnn", "channels": [32, 64], "hidden": [128]},
    )
    student = student_config(teacher, 0.5)
    assert student["model"]["channels"] == [16, 32] and student["model"]["hidden"] == [64]
    assert student["data"]["split"]["seed"] == 3
    assert student["teacher"] == str(Path("runs/teacher").resolve())


def test_text_transformer_keeps_its_heads_dividing_the_embedding() -> None:
    text = {
        "name": "t",
        "type": "text",
        "embedding_dim": 96,
        "encoder": {"kind": "transformer", "heads": 4, "hidden": 128},
    }
    teacher = _teacher(inputs=[text], model={"arch": "mlp", "hidden": [64, 32]})
    student = student_config(teacher, 0.5)
    assert student["inputs"][0]["embedding_dim"] == 48
    assert student["inputs"][0]["encoder"]["hidden"] == 64
    assert student["model"]["hidden"] == [32, 16]


def test_gpt_dim_stays_a_multiple_of_the_heads() -> None:
    teacher = _teacher(
        inputs=[],
        outputs=[{"name": "text", "type": "text"}],
        model={"arch": "gpt", "dim": 120, "heads": 8, "layers": 3},
    )
    model = student_config(teacher, 0.5)["model"]
    assert model["dim"] % 8 == 0 and model["dim"] == 64 and model["layers"] == 3


def test_unshrinkable_arch_and_bad_width_are_refused() -> None:
    teacher = _teacher(inputs=[{"name": "x", "type": "number"}])
    with pytest.raises(ConfigError, match="width must be > 0"):
        student_config(teacher, 0)
    assert student_config(teacher, 0.25)["model"]["hidden"] == [64, 32]  # defaults 256, 128
    pretrained = _teacher(
        inputs=[{"name": "t", "type": "text"}], model={"arch": "pretrained", "path": "bert"}
    )
    with pytest.raises(ConfigError, match=r"cannot shrink model\.arch pretrained"):
        student_config(pretrained, 0.5)
