"""audit-privacy's table shows how many rows each figure rests on, and says when too few test
rows make the rate at 1% false positives meaningless (4 non-members gave a TPR of 0.25)."""

from __future__ import annotations

from megalith.privacy.audit import AuditResult, format_results


def _result(run: str, rows: int) -> AuditResult:
    return AuditResult(
        run=run,
        attack="loss_threshold",
        auc=0.5,
        tpr_at_1pct_fpr=0.25,
        members=rows,
        non_members=rows,
    )


def test_few_non_members_get_a_note_and_every_line_its_row_count() -> None:
    text = format_results([_result("runs/small", 4), _result("runs/large", 500)])
    lines = text.splitlines()
    assert lines[0].split()[-1] == "members"
    assert lines[1].split()[-1] == "4" and lines[2].split()[-1] == "500"
    assert len(lines) == 4 and lines[3].startswith("note: runs/small has only 4 non-members")
    assert "runs/large" not in lines[3]
