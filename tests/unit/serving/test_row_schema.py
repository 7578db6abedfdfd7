"""The request row model the server builds from a run's inputs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from megalith.serving.schema import row_model


def test_a_set_input_takes_a_json_list_or_a_separated_text() -> None:
    row = row_model([("genres", "set"), ("size", "number")])
    listed = row.model_validate({"genres": ["Action", "Comedy"], "size": 3})
    assert listed.model_dump(by_alias=True) == {"genres": ["Action", "Comedy"], "size": 3.0}
    assert row.model_validate({"genres": "Action|Comedy", "size": None}).model_dump(
        by_alias=True
    ) == {"genres": "Action|Comedy", "size": None}
    with pytest.raises(ValidationError, match="genres"):
        row.model_validate({"genres": {"a": 1}, "size": 1})
    with pytest.raises(ValidationError, match="colour"):
        row.model_validate({"genres": "a", "size": 1, "colour": "red"})
