"""Opacus's "Optimal order is the smallest alpha" (RDP at a huge epsilon) becomes Megalith's
note instead of passing through as Opacus's raw text."""

from __future__ import annotations

import warnings

from megalith.training.opacus_notes import SMALLEST_ORDER, OpacusNotes


def _smallest_order_warning() -> None:
    from opacus.accountants.analysis import rdp

    # a Renyi DP that grows fast with the order: the bound is tightest at the smallest one
    rdp.get_privacy_spent(orders=[2.0, 8.0], rdp=[10.0, 1e6], delta=1e-5)


def test_the_smallest_order_warning_is_said_in_megaliths_words() -> None:
    notes = OpacusNotes()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with notes.catching(sample_rate=0.05, accountant="rdp"):
            _smallest_order_warning()
        assert shown == []
    assert notes.notes == [SMALLEST_ORDER]
    prv = OpacusNotes()
    with prv.catching(sample_rate=0.05, accountant="prv"):
        _smallest_order_warning()
    assert prv.notes == []
