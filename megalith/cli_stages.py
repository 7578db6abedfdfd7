"""The commands of the stages that take a finished run: export, explain and serve. Registered on the
app in megalith.cli; heavy imports stay inside each command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from megalith.cli_args import RunArg, fail


def export(
    run: RunArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The bundle folder to write (default RUN/bundle)."),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="The model format: onnx.")] = "onnx",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a bundle already in --output.")
    ] = False,
    exporter: Annotated[
        str,
        typer.Option(
            "--exporter",
            help="dynamo (torch.export, default) or torchscript (the legacy tracer, a fallback).",
        ),
    ] = "dynamo",
) -> None:
    """Write an inference bundle (model.onnx, preprocessor.json, bundle.json), checked against
    PyTorch on the run's test rows; `megalith predict BUNDLE --data ...` then needs no PyTorch."""
    from megalith.loading import load

    folder = load(run).export(output, format=format, overwrite=overwrite, exporter=exporter)
    if (folder / "embeddings.safetensors").is_file():  # a recommender's vectors
        typer.echo(f"wrote {folder} (its scores match the run's)", err=True)
        return
    typer.echo(f"wrote {folder} (ONNX Runtime matches PyTorch on the test rows)", err=True)
    note = bundle_decoding_note(run)
    if note:
        typer.echo(note, err=True)


def bundle_decoding_note(run: Path) -> str | None:
    """What `export` adds for a speech run whose own decoding the bundle cannot do (the
    bundle's transcripts then differ from the run's), else None."""
    from megalith.serving.backend import decodes_in_torch

    needs = decodes_in_torch(Path(run))
    if not needs:
        return None
    return (
        f"note: the bundle decodes with the CTC head alone (greedy or prefix beam search); the "
        f"run decodes with {needs}, which needs PyTorch: transcribe and serve the run directory "
        f"for its own transcripts"
    )


def serve(
    source: Annotated[
        Path, typer.Argument(help="A run directory or a bundle written by `megalith export`.")
    ],
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; other than loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    backend: Annotated[
        str,
        typer.Option("--backend", help="auto (ONNX Runtime when a bundle exists), onnx, torch."),
    ] = "auto",
    token: Annotated[
        str | None,
        typer.Option(
            "--token", help="Require 'Authorization: Bearer TOKEN' (or $MEGALITH_SERVE_TOKEN)."
        ),
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Most rows in one forward pass.")
    ] = 64,
    max_wait_ms: Annotated[
        float,
        typer.Option("--max-wait-ms", min=0, help="A batch of several requests waits this long."),
    ] = 0.0,
    no_batching: Annotated[
        bool, typer.Option("--no-batching", help="One forward pass per request.")
    ] = False,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest request body (MB).")
    ] = 4.0,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Most rows in one request.")
    ] = 1024,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=0.01, help="Seconds before a request gets a 504.")
    ] = 30.0,
    allow_paths: Annotated[
        Path | None,
        typer.Option("--allow-paths", help="Image fields may name files under this folder."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="The model's threads (default: cores - 1)."),
    ] = None,
) -> None:
    """Serve a run or a bundle over HTTP: POST /predict (dynamically batched), /generate for
    language models, /transcribe for speech recognizers, GET /health and /metadata; binds
    127.0.0.1 by default."""
    from megalith.serving import serve as run_server

    if backend not in ("auto", "onnx", "torch"):
        fail(f"--backend {backend}: choose auto, onnx or torch")
    run_server(
        source,
        host=host,
        port=port,
        backend=backend,  # type: ignore[arg-type]  # checked above
        token=token,
        threads=threads,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        batching=not no_batching,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_rows=max_rows,
        timeout_s=timeout_s,
        allow_paths=allow_paths,
    )


def explain(
    run: RunArg,
    data: Annotated[
        Path | None, typer.Option("--data", help="Rows to explain (default: the test split).")
    ] = None,
    rows: Annotated[int | None, typer.Option("--rows", help="Explain the first N rows.")] = None,
    row_ids: Annotated[
        str | None, typer.Option("--row-ids", help="Explain these rows: 0,5,9 (0-based).")
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="ig, saliency, occlusion or shap.")
    ] = "ig",
    target: Annotated[
        str | None, typer.Option("--target", help="The class to explain (default: predicted).")
    ] = None,
    output_name: Annotated[
        str | None, typer.Option("--output-name", help="The output to explain (default first).")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="ig: starting step count.")] = 50,
    internal_batch_size: Annotated[
        int | None,
        typer.Option("--internal-batch-size", help="Most (row, step) pairs per pass (memory)."),
    ] = None,
    attention: Annotated[
        bool,
        typer.Option(
            "--attention/--no-attention", help="Attention maps of Transformer inputs (default on)."
        ),
    ] = True,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder to write (default RUN/explain).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace earlier explanations there.")
    ] = False,
) -> None:
    """Attribute predictions to inputs (Captum) and write explanations.jsonl, summary.json,
    PNG maps and explain.html, with trust figures (completeness, deletion vs random); attention
    maps for Transformer inputs and GPT runs."""
    from megalith.explain import explain_run, write_explanations
    from megalith.explain.output import check_explain_folder
    from megalith.run import Run
    from megalith.runs import RunDir

    try:
        ids = [int(i) for i in row_ids.split(",")] if row_ids else None
    except ValueError:
        fail(f"--row-ids {row_ids}: give row numbers separated by commas, like 0,5,9")
    if output is not None and RunDir(run).owns(output):
        fail(f"--output {output} is one of the run directory's own folders; choose another")
    loaded = Run.load(run)
    destination = output or RunDir(run).explanations  # checked after the options, before the work
    explanations = explain_run(
        loaded, data, rows=rows, row_ids=ids, method=method, target=target,
        output_name=output_name, steps=steps, internal_batch_size=internal_batch_size,
        attention=attention, ready=lambda: check_explain_folder(destination, overwrite),
    )  # fmt: skip
    folder = write_explanations(explanations, destination, overwrite=overwrite)
    trust = ", ".join(f"{k} {'passed' if v['passed'] else 'FAILED'}" for k, v in
                      explanations.summary["trust"].items())  # fmt: skip
    verdicts = f"; {trust}" if trust else ""
    typer.echo(f"wrote {folder} ({len(explanations.rows)} rows{verdicts})", err=True)
    if output is None:  # the report is left as it was: rewriting it means evaluating again
        typer.echo(f"`megalith report {run}` links it from report.html", err=True)
