"""Explain without Captum installed names the extra to install, in one line."""

from __future__ import annotations

from megalith.errors import missing_extra


def test_a_missing_captum_names_the_explain_extra() -> None:
    error = missing_extra(ModuleNotFoundError("No module named 'captum'", name="captum.attr"))
    assert str(error) == (
        'this command needs captum, which is not installed here: pip install "megalith[explain]"'
    )
    assert error is not None and error.exit_code == 2
