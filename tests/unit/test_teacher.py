"""How a teacher's outputs are matched to its student's: classes by name, binary values."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.data.features import BinaryOutput, CategoryOutput
from megalith.data.features.binary import BinaryOutputEncoder
from megalith.data.features.category import CategoryOutputEncoder
from megalith.errors import ConfigError
from megalith.teacher import _alignment

WHERE = Path("runs/teacher")


def _classes(*names: str) -> CategoryOutputEncoder:
    return CategoryOutputEncoder(CategoryOutput(name="y"), state={"classes": list(names)})


def _binary(negative: str, positive: str) -> BinaryOutputEncoder:
    state = {"values": [negative, positive], "mode": 0.0}
    return BinaryOutputEncoder(BinaryOutput(name="y"), state=state)


def test_classes_are_matched_by_name() -> None:
    alignment = _alignment("y", _classes("a", "b", "c"), _classes("c", "a", "b"), WHERE)
    assert alignment.order == (1, 2, 0)  # the teacher's index of a, b, c


def test_other_classes_are_refused_naming_them() -> None:
    with pytest.raises(ConfigError, match=r"only the teacher: \['d'\]; only this model: \['c'\]"):
        _alignment("y", _classes("a", "b", "c"), _classes("a", "b", "d"), WHERE)


def test_binary_values_swapped_flip_the_logit() -> None:
    assert _alignment("y", _binary("no", "yes"), _binary("yes", "no"), WHERE).flip
    assert not _alignment("y", _binary("no", "yes"), _binary("no", "yes"), WHERE).flip
    with pytest.raises(ConfigError, match="same two values"):
        _alignment("y", _binary("no", "yes"), _binary("0", "1"), WHERE)
