"""The report's privacy section: the budget spent, what it covers, and the leakage audit.

It reads eval.json's `privacy` (written by a private run) and RUN/privacy-audit.json (written
by `megalith audit-privacy`); it imports neither the trainer nor the audit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

AUDIT_FILE = "privacy-audit.json"


def privacy_card(scores: dict[str, Any]) -> list[tuple[str, str]]:
    """The top-of-report card: epsilon spent at delta, or nothing for a non-private run."""
    privacy = scores.get("privacy")
    if not privacy:
        return []
    return [(f"privacy ε (δ = {privacy['delta']:.2g})", f"{privacy['epsilon']:.3g}")]


def privacy_section(scores: dict[str, Any], run_path: Path) -> dict[str, Any] | None:
    """What report.html.j2's privacy section shows; None when the run is not private and was
    not audited."""
    privacy = scores.get("privacy")
    audit = read_audit(run_path)
    if not privacy and audit is None:
        return None
    rows = []
    if privacy:
        rows = [
            ("ε spent / target", f"{privacy['epsilon']:.4g} / {privacy['target_epsilon']:.4g}"),
            ("δ", f"{privacy['delta']:.3g}"),
            ("accountant", privacy["accountant"]),
            ("noise multiplier (sigma)", f"{privacy['noise_multiplier']:.4g}"),
            ("per-row gradient clip (L2)", f"{privacy['max_grad_norm']:.4g}"),
            ("sample rate q (Poisson)", f"{privacy['sample_rate']:.4g}"),
            ("noisy steps", str(privacy["steps"])),
        ]
    return {
        "rows": rows,
        "not_covered": privacy.get("not_covered") if privacy else None,
        "fitted": privacy.get("fitted_from_private_rows", []) if privacy else [],
        "baselines": privacy.get("baselines") if privacy else None,
        "audit": audit,
    }


def read_audit(run_path: Path) -> dict[str, Any] | None:
    """RUN/privacy-audit.json, or None when the run was not audited (or the file is unreadable)."""
    path = Path(run_path) / AUDIT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
