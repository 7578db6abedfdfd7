"""The CLI's --users list."""

from __future__ import annotations

import pytest

from megalith.errors import DataError
from megalith.recommend.run import user_list


def test_users_are_split_on_commas_stripped_and_kept_once() -> None:
    assert user_list("1, 2,1,,Zoë ,2") == ["1", "2", "Zoë"]
    with pytest.raises(DataError, match="--users"):
        user_list(" , ")
