"""A private run resumed on another number of processes says its batches change (each process
draws its own Poisson batches), not that the row order is unchanged as for other runs."""

from __future__ import annotations

from megalith.training.elastic import describe_world_change


def test_a_private_run_moved_to_other_processes_is_told_the_resume_is_not_exact() -> None:
    line = describe_world_change(2, 1, 16, private=True)
    assert line is not None
    assert "not an exact resume" in line and "row order are unchanged" not in line
    assert "row order are unchanged" in (describe_world_change(2, 1, 16) or "")
