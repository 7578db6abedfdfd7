"""Opacus's own warnings, caught where Megalith calls Opacus and said once in Megalith's words.

Opacus warns through Python's `warnings` (and NumPy's floating-point warnings inside its
accountants): "Optimal order is the largest alpha...", a divide by zero at sample rate 1, "GDP
accounting is experimental...". Raw, they reach users as file paths and line numbers, once per
epoch. `OpacusNotes.catching` records them around one call (not a global filter), keeps what
they mean as a short note, and lets any warning that is not Opacus's through unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

LARGEST_ORDER = (
    "the RDP accountant's epsilon was bounded at the largest Renyi order Opacus tries (the "
    "privacy loss is small: few steps or much noise), so it overstates the epsilon spent; "
    "accountant: prv gives a tighter figure"
)
SMALLEST_ORDER = (
    "the RDP accountant's epsilon was bounded at the smallest Renyi order Opacus tries (the "
    "privacy loss is large: little noise), so it overstates the epsilon spent, and an epsilon "
    "this large guarantees little"
)
GDP_EXPERIMENTAL = (
    "accountant gdp is Opacus's Gaussian-DP approximation, which can understate the epsilon "
    "spent (Gopi et al. 2021); prefer prv or rdp for a figure to publish"
)


def _meaning(warning: warnings.WarningMessage, sample_rate: float, accountant: str) -> str | None:
    """The note an Opacus warning comes to; None when it says nothing a user can act on."""
    text = str(warning.message)
    if "Optimal order is the largest alpha" in text:
        # the PRV accountant asks RDP only for the range of its numerical integration
        return LARGEST_ORDER if accountant == "rdp" else None
    if "Optimal order is the smallest alpha" in text:
        return SMALLEST_ORDER if accountant == "rdp" else None
    if "GDP accounting is experimental" in text:
        return GDP_EXPERIMENTAL
    if issubclass(warning.category, RuntimeWarning) and sample_rate >= 1.0:
        return None  # log(1 - q) at q = 1: the batch-size note before step 0 says what to do
    if issubclass(warning.category, DeprecationWarning):
        return None  # Opacus's own API changes: nothing a user can change
    return f"Opacus: {text.splitlines()[0] if text else warning.category.__name__}"


@dataclass
class OpacusNotes:
    """The notes gathered from Opacus's warnings in one run, each kept once, in order."""

    notes: list[str] = field(default_factory=list)

    @contextmanager
    def catching(self, sample_rate: float, accountant: str = "rdp") -> Iterator[None]:
        """Record the warnings raised inside the block; Opacus's become notes (see `_meaning`),
        others are issued again as they were.

        Args:
            sample_rate: the run's Poisson rate q (at q = 1 NumPy's divide-by-zero warnings
                from the accountants are expected).
            accountant: train.privacy.accountant (prv, rdp or gdp).
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            if "opacus" not in warning.filename.replace("\\", "/").split("/"):
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
                continue
            note = _meaning(warning, sample_rate, accountant)
            if note is not None and note not in self.notes:
                self.notes.append(note)
