"""Epsilon from Opacus's RDP accountant history, with the one-step Renyi DP cached: the same
figure as `RDPAccountant.get_epsilon`, computed once per (noise, rate) instead of per call."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any


def rdp_epsilon(history: Sequence[tuple[float, float, int]], delta: float) -> float:
    """Epsilon at `delta` after the (noise multiplier, sample rate, steps) entries of an
    Opacus RDP accountant's history, at its default orders (Mironov 2017; Mironov et al. 2019)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp

    total = sum(_one_step_rdp(sigma, q) * steps for sigma, q, steps in history)
    epsilon, _ = rdp.get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=total, delta=delta)
    return float(epsilon)


@functools.lru_cache(maxsize=16)
def _one_step_rdp(noise_multiplier: float, sample_rate: float) -> Any:
    """The Renyi DP of one subsampled Gaussian step at each default order (numpy array)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp

    orders = RDPAccountant.DEFAULT_ALPHAS
    return rdp.compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=orders)
