"""`megalith audit-privacy RUN`: a membership-inference audit of a trained run.

Members are the run's train rows, non-members its test rows (both re-derived from the data
source exactly as training split them); an equal number of each, at most `max_rows`, is drawn.
Each attack (megalith.privacy.attacks) scores every row; the audit reports its AUC (0.5: the
attack cannot tell members apart) and its true-positive rate at 1% false positives.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from megalith.data.sources import Table
from megalith.data.tensors import TensorTable
from megalith.errors import DataError
from megalith.evaluate.privacy_section import AUDIT_FILE
from megalith.privacy.attacks import (
    attack_metrics,
    likelihood_ratio_scores,
    loss_threshold_scores,
)
from megalith.run import Run, load
from megalith.runs import RunDir

HOW = (
    "Members are train rows, non-members test rows, the same number of each. Loss threshold: a "
    "low loss means member (Yeom et al. 2018). Likelihood ratio: the log-odds confidence of the "
    "true label under class-wise Gaussians of members vs non-members, cross-fitted on half the "
    "rows, no shadow models (after Carlini et al. 2022). AUC 0.5 means no leakage detected."
)


@dataclass
class AuditResult:
    """One attack's figures on one run."""

    run: str
    attack: str
    auc: float
    tpr_at_1pct_fpr: float
    members: int
    non_members: int


def audit_privacy(
    run: Run | str | Path,
    compare: Run | str | Path | None = None,
    *,
    max_rows: int = 5000,
    seed: int = 0,
    write: bool = True,
) -> list[AuditResult]:
    """Membership-inference audit of `run` (and of `compare`, e.g. its non-private twin).

    Args:
        run: a trained run or its directory.
        compare: another run on the same data, audited the same way, shown beside it.
        max_rows: members and non-members drawn (each), at most.
        seed: which rows are drawn and how the likelihood-ratio folds fall.
        write: save RUN/privacy-audit.json and re-write RUN/report.html with its section.
    Returns:
        one AuditResult per (run, attack): loss_threshold and likelihood_ratio.
    Raises:
        DataError: the run has no test rows, or its outputs are text (token losses); or
            `compare` was trained or tested on other rows (naming what differs), or is the
            run itself.
    """
    target = run if isinstance(run, Run) else load(run)
    other = None if compare is None else compare if isinstance(compare, Run) else load(compare)
    if other is not None and Path(other.path).resolve() == Path(target.path).resolve():
        raise DataError(
            f"--compare {other.path}: that is {target.path} itself, whose figures would be "
            "listed twice as two runs; compare another run trained on the same data and "
            "split, such as its non-private twin, or leave --compare out"
        )
    data = target.data_splits()
    if other is None:
        results = _audit_one(target, data, max_rows, seed)
    else:
        other_data = other.data_splits()
        check_same_rows(target, data[1], other, other_data[1])
        results = _audit_one(target, data, max_rows, seed)
        results += _audit_one(other, other_data, max_rows, seed)
    if write:
        RunDir(target.path).write_json(target.path / AUDIT_FILE, audit_json(results))
        from megalith.evaluate.report import write_report  # matplotlib loads only here

        write_report(target)
    return results


def check_same_rows(
    run: Run, splits: dict[str, pd.DataFrame], other: Run, other_splits: dict[str, pd.DataFrame]
) -> None:
    """Refuse to audit `other` beside `run` unless both split the same rows into train and
    test: the two audits would otherwise attack different members, and their figures could
    not be compared. Rows are compared by index and the values of the columns both sources
    hold, so a copy of the data file elsewhere is the same data.

    Raises:
        DataError: naming both runs, the split whose rows differ and the setting that differs.
    """
    for name in ("train", "test"):
        rows, other_rows = splits[name], other_splits[name]
        common = sorted(set(rows.columns) & set(other_rows.columns))
        if not common or _rows_digest(rows, common) != _rows_digest(other_rows, common):
            raise DataError(
                f"--compare {other.path}: its {name} rows are not those of {run.path} "
                f"({_what_differs(run, other)}); compare a run trained on the same data and "
                "split, such as its non-private twin"
            )


def _rows_digest(frame: pd.DataFrame, columns: list[str]) -> str:
    """SHA-256 of the rows' index and of their values in `columns`, in order."""
    hashed = pd.util.hash_pandas_object(frame[columns], index=True)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def _what_differs(run: Run, other: Run) -> str:
    """The setting that splits the two runs' rows differently, as `key a vs b`."""
    data, other_data = run.config.data, other.config.data
    if data.source != other_data.source:
        return f"data.source {data.source} vs {other_data.source}"
    split, other_split = data.split.model_dump(), other_data.split.model_dump()
    if split != other_split:
        changed = [key for key in split if split[key] != other_split[key]]
        unset = {"seed": (f"unset (seed {run.config.seed})", f"unset (seed {other.config.seed})")}
        shown = {
            key: (
                unset[key][0] if key in unset and split[key] is None else split[key],
                unset[key][1] if key in unset and other_split[key] is None else other_split[key],
            )
            for key in changed
        }
        return ", ".join(f"data.split.{k} {a} vs {b}" for k, (a, b) in shown.items())
    if run.config.seed != other.config.seed:
        return f"seed {run.config.seed} vs {other.config.seed}"
    if run.config.outputs[0].name != other.config.outputs[0].name:  # the split's strata
        return f"first output {run.config.outputs[0].name} vs {other.config.outputs[0].name}"
    return f"the same data.source and split, but {data.source} changed between the trainings"


def _audit_one(
    run: Run, data: tuple[Table, dict[str, pd.DataFrame]], max_rows: int, seed: int
) -> list[AuditResult]:
    table, splits = data
    if not len(splits["test"]):
        raise DataError(f"{run.path}: the run has no test rows to serve as non-members")
    if any(feature.type == "text" for feature in run.config.outputs):
        raise DataError(f"{run.path}: text outputs are not audited (per-row token losses)")
    rng = np.random.default_rng(seed)
    size = min(max_rows, len(splits["train"]), len(splits["test"]))
    parts = []
    for name in ("train", "test"):
        frame = splits[name]
        frame = frame.iloc[np.sort(rng.choice(len(frame), size, replace=False))]
        parts.append(run.preprocessor.transform(frame, base_dir=table.base_dir, origin=name))
    losses, phi, groups = zip(*(_row_scores(run, part) for part in parts), strict=True)
    member = np.r_[np.ones(len(losses[0]), bool), np.zeros(len(losses[1]), bool)]
    all_losses, all_phi, all_groups = np.r_[losses], np.r_[phi], np.r_[groups]
    scores = {
        "loss_threshold": loss_threshold_scores(all_losses),
        "likelihood_ratio": likelihood_ratio_scores(all_phi, all_groups, member, seed),
    }
    return [
        AuditResult(
            run=str(run.path),
            attack=attack,
            members=int(member.sum()),
            non_members=int((~member).sum()),
            **attack_metrics(values, member),
        )
        for attack, values in scores.items()
    ]


def _row_scores(run: Run, rows: TensorTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row loss, scaled confidence phi and class (for the likelihood ratio), summed /
    taken from the first output over the run's outputs."""
    outputs = run.forward_table(rows)
    loss = torch.zeros(len(rows))
    phi, groups = torch.zeros(len(rows)), torch.zeros(len(rows), dtype=torch.long)
    for i, spec in enumerate(run.preprocessor.output_specs):
        out, target = outputs[spec.name].float(), rows.targets[spec.name]
        if spec.type == "category":
            row_loss = F.cross_entropy(out, target.long(), reduction="none")
            conf, group = -row_loss, target.long()
        elif spec.type == "binary":
            row_loss = F.binary_cross_entropy_with_logits(out, target.float(), reduction="none")
            conf, group = -row_loss, target.long()
        else:  # a number: standardised squared error
            row_loss = (out - target.float()) ** 2
            conf, group = -row_loss, torch.zeros(len(rows), dtype=torch.long)
        loss += row_loss
        if i == 0:
            phi, groups = (conf if spec.type == "number" else _log_odds(conf)), group
    return loss.numpy(), phi.numpy(), groups.numpy()


def _log_odds(log_p: torch.Tensor) -> torch.Tensor:
    """log p / (1 - p) from log p, stable near p = 1 (LiRA's logit scaling)."""
    log_p = log_p.clamp(max=-1e-7)
    return log_p - torch.log(-torch.expm1(log_p))


def audit_json(results: list[AuditResult]) -> dict[str, Any]:
    """The results as saved in RUN/privacy-audit.json."""
    return {"how": HOW, "rows": [asdict(result) for result in results]}


FEW_NON_MEMBERS = 100
"""Below this many non-members, 1% false positives is less than one row."""


def format_results(results: list[AuditResult]) -> str:
    """The results as a small aligned table, one line per (run, attack)."""
    lines = [f"{'run':40} {'attack':17} {'AUC':>6} {'TPR@1%FPR':>10} {'members':>8}"]
    for r in results:
        lines.append(
            f"{r.run[-40:]:40} {r.attack:17} {r.auc:6.3f} {r.tpr_at_1pct_fpr:10.3f} {r.members:8d}"
        )
    few = {r.run: r.non_members for r in results if r.non_members < FEW_NON_MEMBERS}
    for run, count in few.items():
        lines.append(
            f"note: {run} has only {count} non-members (test rows): 1% of them is less than one "
            "row, so TPR@1%FPR is the rate at no false positive at all, and the AUC is noisy; "
            "audit a run with a larger test split"
        )
    return "\n".join(lines)
