"""`megalith init` for mixed tables: name lists read as sets, heavy-tailed numbers log-scaled, and
the model settings that won on mixed tables (benchmarks/mixed_tables.py), each with a notice.

The generic column typing is megalith.data.infer's; this module refines what it decided.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

_SAMPLE = 2000
_NAME = re.compile(r"^[\w.\-+/:@]+$")
"""One name of a name list: no spaces, no sentence punctuation."""
_SEPARATORS = re.compile(r"[|,;\s]+")
_STOP_WORDS = frozenset(
    {"the", "a", "an", "of", "to", "and", "or", "is", "are", "for", "in", "on", "with", "by"}
)
"""Words of prose: a column whose cells hold them is text, not a list of names."""
_HEAVY_SKEW = 2.0
"""Sample skewness above which a non-negative number column counts as heavy-tailed..."""
_SPAN = 10.0
"""...when its 99th percentile is also this many times its median (or more)."""


def is_name_list(strings: pd.Series) -> bool:
    """Cells that are lists of names ('numpy pandas', 'a|b|c'): most cells split into names
    (no prose words among them), a good share hold several, and names repeat across rows."""
    sample = strings.sample(_SAMPLE, random_state=0) if len(strings) > _SAMPLE else strings
    lists = [[n for n in _SEPARATORS.split(str(s).strip()) if n] for s in sample]
    names = [n for cell in lists for n in cell]
    if not names:
        return False
    several = np.mean([len(cell) >= 2 for cell in lists])
    well_formed = np.mean([_NAME.match(n) is not None for n in names])
    prose = np.mean([any(n.lower() in _STOP_WORDS for n in cell) for cell in lists])
    repeats = len(set(names)) <= 0.5 * len(names)
    return bool(several >= 0.3 and well_formed >= 0.95 and prose < 0.05 and repeats)


def is_heavy_tailed(values: pd.Series) -> bool:
    """A non-negative number column with a long right tail (sizes, counts, amounts)."""
    present = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=np.float64)
    if len(present) < 20 or present.min() < 0:
        return False
    median, p99 = np.percentile(present, [50, 99])
    centred = present - present.mean()
    spread = float(np.sqrt(np.mean(centred**2)))
    skew = float(np.mean(centred**3)) / spread**3 if spread > 0 else 0.0  # sample skewness
    return skew > _HEAVY_SKEW and p99 >= _SPAN * max(median, 1e-9)


def refine_inputs(frame: pd.DataFrame, inputs: list[dict[str, Any]], notices: list[str]) -> None:
    """Retype name-list columns as set and log-scale heavy-tailed numbers, in place."""
    for feature in inputs:
        name, kind = feature["name"], feature["type"]
        cells = frame[name].dropna().astype(str)
        if kind in ("text", "category") and is_name_list(cells):
            feature["type"] = "set"
            several = cells[cells.str.contains(r"[|,;\s]")]
            example = str((several if len(several) else cells).iloc[0])[:40]
            said = f"column '{name}': "  # the missing-cells notice, written for text or category
            notices[:] = [
                n.replace("empty text", "an empty set").replace(
                    "an 'unknown' category", "an empty set"
                )
                if n.startswith(said)
                else n
                for n in notices
            ]
            notices.append(
                f"column '{name}' holds lists of names (such as {example!r}): typed as set, "
                "a bag of categories"
            )
        elif kind == "number" and is_heavy_tailed(frame[name]):
            feature["transform"] = "log"
            notices.append(
                f"column '{name}' is heavy-tailed (99th percentile >= {_SPAN:.0f}x the median): "
                "log-scaled before standardising (transform: log)"
            )


_MIXED_MODEL: dict[str, Any] = {"arch": "mlp", "hidden": [], "modality_dropout": 0.1}
_MIXED_OPTIMIZER: dict[str, Any] = {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}
_MIXED_WHY = (
    "a mixed table (text or name lists beside numbers and categories): every input's encoding "
    "straight into the output head (model.hidden: []), AdamW lr 0.01 with weight_decay 0.1, "
    "modality_dropout 0.1, stopped early on val/loss; on the installed-modules table of "
    "benchmarks/mixed_tables.py the generic MLP (hidden [256, 128], lr 0.001) overfit by epoch 5 "
    "and reached 0.825 test accuracy, these settings 0.945 against 0.936 for TF-IDF + logistic "
    "regression (docs/tables.md). A hidden layer (model.hidden: [64]) is what lets columns "
    "interact: on a table where only two columns together decide the label it reaches 0.872 "
    "against 0.508 head-only, but on a table of independent evidence it loses 2.3 points "
    "(0.657 against 0.680), so add it only when you expect columns to interact. On a small table "
    "whose many-valued columns are mostly noise, SGD (train.optimizer: {name: sgd, lr: 0.1, "
    "weight_decay: 0.001}) came closer to logistic regression (0.705 against 0.680 and 0.720) "
    "but lost 10.5 points on a real table with a large text vocabulary"
)


def is_mixed(inputs: list[dict[str, Any]]) -> bool:
    """Text or name lists alongside numbers or categories."""
    kinds = {feature["type"] for feature in inputs}
    return bool(kinds & {"text", "set"}) and bool(kinds - {"text", "set"})


def mixed_table_settings(
    inputs: list[dict[str, Any]], notices: list[str]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(model, optimizer) for a mixed table, with the reason in `notices`; None otherwise."""
    if not is_mixed(inputs):
        return None
    notices.append(_MIXED_WHY)
    return dict(_MIXED_MODEL), dict(_MIXED_OPTIMIZER)
