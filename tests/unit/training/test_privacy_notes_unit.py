"""Opacus's warnings turned into Megalith's notes; the batch-size note; baseline headings."""

from __future__ import annotations

import warnings

import pytest

from megalith.evaluate.baselines import baseline_heading
from megalith.training.opacus_notes import GDP_EXPERIMENTAL, LARGEST_ORDER, OpacusNotes
from megalith.training.private_run import batch_size_note


def _largest_order_warning() -> None:
    from opacus.accountants.analysis import rdp

    # a tiny Renyi DP at every order: the bound is tightest at the largest one, and Opacus warns
    rdp.get_privacy_spent(orders=[2.0, 8.0], rdp=[1e-9, 1e-8], delta=1e-5)


def test_opacus_warnings_become_one_note_each_and_others_pass_through() -> None:
    notes = OpacusNotes()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for _ in range(3):
            with notes.catching(sample_rate=0.1, accountant="rdp"):
                _largest_order_warning()
        assert shown == []  # nothing raw
    assert notes.notes == [LARGEST_ORDER]
    with pytest.warns(UserWarning, match="not Opacus's"), notes.catching(0.1):
        warnings.warn("not Opacus's", UserWarning, stacklevel=1)
    assert notes.notes == [LARGEST_ORDER]


def test_the_prv_accountant_and_gdp_get_their_own_meaning() -> None:
    from opacus.accountants import create_accountant

    prv = OpacusNotes()
    with prv.catching(sample_rate=0.1, accountant="prv"):  # RDP is only PRV's domain bound
        _largest_order_warning()
    assert prv.notes == []
    gdp = OpacusNotes()
    with gdp.catching(sample_rate=0.1, accountant="gdp"):
        create_accountant("gdp")
    assert gdp.notes == [GDP_EXPERIMENTAL]


def test_a_step_that_takes_every_train_row_is_noted() -> None:
    assert batch_size_note(256, 1, 1000) is None
    note = batch_size_note(1024, 1, 600)
    assert note is not None and "train.batch_size 1024 is at least the 600 train rows" in note
    assert "sample rate 1" in note and "set train.batch_size to 60 or less" in note
    accumulated = batch_size_note(100, 4, 400)
    assert accumulated is not None and "x train.grad_accumulation 4" in accumulated
    assert "to 10 or less" in accumulated


def test_baselines_are_headed_not_private_only_in_a_private_run() -> None:
    assert baseline_heading("linear", {"test": {}}) == "linear (test)"
    assert baseline_heading("linear", {"privacy": {"epsilon": 3}}) == "linear (test, not private)"
