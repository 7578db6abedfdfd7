"""A train.privacy.delta of at least 1 / the train rows is noted before step 0 (it used to pass
silently), with the default to use instead."""

from __future__ import annotations

from megalith.training.private_run import delta_note


def test_a_delta_of_at_least_one_over_the_rows_is_noted() -> None:
    note = delta_note(0.01, 640)
    assert note is not None
    assert note.startswith("train.privacy.delta 0.01 is at least 1 / the 640 train rows")
    assert "set delta to 0.000156" in note
    assert delta_note(1 / 640, 640) is not None
    assert delta_note(1e-5, 640) is None
    assert delta_note(None, 640) is None  # the default, 1 / (10 N)
