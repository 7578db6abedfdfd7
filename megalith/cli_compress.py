"""`megalith compress RUN`: the command; the work is in megalith.compress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from megalith.cli_args import RunArg, fail


def compress(
    run: RunArg,
    steps: Annotated[
        str | None,
        typer.Option("--steps", help="Steps in order, from distill,prune,quantize (a subset)."),
    ] = None,
    prune: Annotated[
        float | None,
        typer.Option("--prune", help="Remove this fraction of the MACs (0-1); see --prune-by."),
    ] = None,
    prune_by: Annotated[
        str | None,
        typer.Option("--prune-by", help="prune: macs (default, aligned widths) or channels."),
    ] = None,
    finetune_epochs: Annotated[
        int | None, typer.Option("--finetune-epochs", help="prune: epochs of fine-tuning.")
    ] = None,
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="Quantize the model's bundle: int8.")
    ] = None,
    scheme: Annotated[
        str | None,
        typer.Option("--scheme", help="int8 scheme: auto (default), dynamic or static."),
    ] = None,
    distill_width: Annotated[
        float | None,
        typer.Option("--distill-width", help="distill: student width / teacher width."),
    ] = None,
    max_metric_drop: Annotated[
        float | None,
        typer.Option("--max-metric-drop", help="Gate: most points (0.01) of metric lost."),
    ] = None,
    watch: Annotated[
        str | None, typer.Option("--watch", help="Gate on this test metric (e.g. macro_f1).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Take rejected steps forward anyway.")
    ] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="ONNX Runtime threads for timing.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A YAML file with a `compress:` block.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder to write (default RUN/compress)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier compression there.")
    ] = False,
) -> None:
    """Shrink a run (distill -> prune -> int8), measuring each step's size, MACs, latency and
    test metrics; a step that costs more than --max-metric-drop points or is not faster is
    rejected. Writes a folder per step, compression.json and compression.html."""
    from megalith.compress import compress as run_compress
    from megalith.runs import RunDir

    if quantize is not None and quantize != "int8":
        fail(f"--quantize {quantize}: the format is int8")
    if output is not None and RunDir(run).owns(output):
        fail(f"--output {output} is one of the run directory's own folders; choose another")
    settings: dict[str, Any] = {
        "prune": prune,
        "prune_by": prune_by,
        "finetune_epochs": finetune_epochs,
        "quantize": quantize,
        "scheme": scheme,
        "distill_width": distill_width,
        "max_metric_drop": max_metric_drop,
        "watch": watch,
        "threads": threads,
        "force": force or None,
    }
    pruning = [
        name
        for name, value in (
            ("--prune", prune),
            ("--prune-by", prune_by),
            ("--finetune-epochs", finetune_epochs),
        )
        if value is not None
    ]
    # --prune-by / --finetune-epochs alone mean prune, unless a --config names the steps
    implied = prune is not None or (bool(pruning) and config is None)
    chosen = _steps(steps, implied, quantize, distill_width)
    if chosen is not None and "prune" not in chosen and pruning:
        fail(
            f"{', '.join(pruning)} set the prune step, which --steps leaves out; "
            "add prune to --steps"
        )
    result = run_compress(run, chosen, output, config=config, overwrite=overwrite, **settings)
    for model in result.models:
        verdict = model["verdict"]
        state = (
            "accepted"
            if verdict.get("accepted")
            else "REJECTED: " + "; ".join(verdict.get("reasons", []))
        )
        latency = model["latency_ms"]
        typer.echo(
            f"{model['name']}: {model['bundle_mb']:.3f} MB (ONNX), {latency['1']:.3f} ms @1, "
            f"{latency['32']:.3f} ms @32 - {state}",
            err=True,
        )
    typer.echo(
        f"wrote {result.path} (best: {result.summary['best']}; {result.page.name})", err=True
    )


def _steps(
    steps: str | None, prune: bool, quantize: str | None, width: float | None
) -> list[str] | None:
    """--steps as a list; else the steps the options name (--prune, --prune-by or
    --finetune-epochs alone mean prune); else None (the config's steps, or quantize)."""
    if steps is not None:
        return [step.strip() for step in steps.split(",") if step.strip()] or fail(
            "--steps is empty; give distill, prune and/or quantize separated by commas"
        )
    implied = [
        name
        for name, given in (
            ("distill", width is not None),
            ("prune", prune),
            ("quantize", quantize is not None),
        )
        if given
    ]
    return implied or None
