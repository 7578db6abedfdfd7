"""Modality dropout on a model of one input is refused naming the key that asked for it."""

from __future__ import annotations

import pytest

from megalith.data.specs import InputSpec
from megalith.errors import ConfigError
from megalith.models.fusion import ModalityDropout

ONE = [InputSpec("size", "number")]


@pytest.mark.parametrize(
    ("p", "by_input", "key"),
    [
        (0.1, {}, r"model\.modality_dropout:"),
        (0.0, {"size": 0.5}, r"model\.modality_dropout_by_input\.size:"),
        (0.1, {"size": 0.5}, r"model\.modality_dropout_by_input\.size:"),
    ],
)
def test_one_input_cannot_be_blanked_and_the_error_names_the_key_set(
    p: float, by_input: dict[str, float], key: str
) -> None:
    with pytest.raises(ConfigError, match=key + r".*at least two inputs.*set it to 0"):
        ModalityDropout(ONE, p, by_input)


def test_a_rate_of_zero_on_the_one_input_is_accepted() -> None:
    assert ModalityDropout(ONE, 0.1, {"size": 0.0}).rates == {}


def test_a_rate_for_an_input_that_cannot_be_blanked_is_refused() -> None:
    specs = [InputSpec("size", "number"), InputSpec("clip", "audio")]
    with pytest.raises(
        ConfigError, match=r"by_input\.clip: an input of type audio cannot be blanked"
    ):
        ModalityDropout(specs, 0.1, {"clip": 0.5})
    assert set(ModalityDropout(specs, 0.1, {"clip": 0.0}).rates) == {"size"}
