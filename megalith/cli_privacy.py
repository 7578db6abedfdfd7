"""`megalith audit-privacy`: registered on the app in megalith.cli; the audit loads only when it
runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from megalith.cli_args import RunArg


def audit_privacy(
    run: RunArg,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare", help="Another run on the same data (e.g. its non-private twin) to audit."
        ),
    ] = None,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=10, help="Members and non-members drawn (each).")
    ] = 5000,
) -> None:
    """Membership-inference audit (train rows vs test rows): each attack's AUC and true-positive
    rate at 1% false positives; written to RUN/privacy-audit.json and RUN/report.html."""
    from megalith.privacy.audit import audit_privacy as audit
    from megalith.privacy.audit import format_results

    results = audit(run, compare, max_rows=max_rows)
    typer.echo(format_results(results))
    typer.echo(
        f"wrote {Path(run) / 'privacy-audit.json'} and the report's privacy section", err=True
    )
