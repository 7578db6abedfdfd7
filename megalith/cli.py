"""The command line: one small function per verb, heavy imports only inside the verb."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from megalith.errors import MegalithError, cannot_write, missing_extra

app = typer.Typer(
    name="megalith",
    help="Describe a model in one config; train, evaluate and predict with it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
_state = {"debug": False}

_FILE_HINT = "check that its folder exists and is writable, and that the disk has space"

RunArg = Annotated[Path, typer.Argument(help="A run directory written by `megalith train`.")]
RunOrBundleArg = Annotated[
    Path,
    typer.Argument(help="A run directory (`megalith train`) or an inference bundle (`export`)."),
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"megalith {version('megalith')}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def train(
    config: Annotated[
        Path | None, typer.Argument(help="A YAML config (optional with --resume).")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-o", help="Run directory (default runs/NAME-TIME)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="Override a config key: --set train.epochs=3 (repeatable)."
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue a run directory from its last checkpoint."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Allow writing into a non-empty --output-dir.")
    ] = False,
    devices: Annotated[
        int,
        typer.Option("--devices", help="Train with N processes (DDP through torchrun)."),
    ] = 1,
) -> None:
    """Train a model from a config and write its run directory."""
    import os

    if config is None and resume is None:
        _fail("give a CONFIG to train, or --resume RUN_DIR to continue a run")
    if devices != 1 and "WORLD_SIZE" not in os.environ:
        from megalith.training.distributed import launch

        argv = ["--debug"] if _state["debug"] else []
        argv += ["train", *([str(config)] if config else [])]
        argv += ["--output-dir", str(output_dir)] if output_dir else []
        argv += [arg for value in set_ or [] for arg in ("--set", value)]
        argv += ["--resume", str(resume)] if resume else []
        argv += ["--overwrite"] if overwrite else []
        raise typer.Exit(launch(devices, argv))

    from megalith.pipeline import train as run_training

    source: Any = config
    run_training(
        source, output_dir=output_dir, overrides=set_ or [], resume=resume, overwrite=overwrite
    )


@app.command()
def evaluate(
    run: RunArg,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="A labelled table (default: the run's test split)."),
    ] = None,
) -> None:
    """Print loss and metrics of a trained run on labelled data."""
    import json

    from megalith.run import Run

    metrics = Run.load(run).evaluate(data)
    typer.echo(json.dumps(metrics, indent=2))


@app.command()
def predict(
    run: RunOrBundleArg,
    data: Annotated[
        Path, typer.Option("--data", help="A table of rows to predict (CSV, Parquet, JSONL).")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", help="Where to write (.csv, .parquet, .jsonl); default CSV on stdout."
        ),
    ] = None,
) -> None:
    """Write predictions (with class probabilities) for new rows, from a run directory or an
    inference bundle (`megalith export`; predicted with ONNX Runtime, without PyTorch), after
    the rows as they were read: to CSV, a CSV's cells as written, in its separator and
    decimal mark."""
    import pandas as pd

    from megalith.data.sources import load_table
    from megalith.runtime.predictor import is_bundle

    predictor: Any
    if is_bundle(run):
        from megalith.runtime import load_bundle

        predictor = load_bundle(run)
        table = load_table(str(data), keep_text=True)
    else:
        from megalith.run import Run
        from megalith.runs import RunDir

        predictor = Run.load(run)
        predictor.check_predicts()
        if output is not None and RunDir(run).owns(output):
            _fail(f"--output {output} is one of the run directory's own files; choose another path")
        table = predictor.read_table(data, keep_text=True)
    frame = table.frame
    predictions = predictor.predict(frame, base_dir=table.base_dir)
    # a labelled file keeps its own target column; the prediction goes beside it
    predictions.columns = [
        f"{c}_predicted" if c in frame.columns else c for c in predictions.columns
    ]
    as_written = output is None or output.suffix.lower() == ".csv"  # else typed (Parquet...)
    rows = table.text if as_written and table.text is not None else frame
    result = pd.concat([rows, predictions], axis=1)
    dialect = table.dialect
    sep, decimal = (dialect.delimiter, dialect.decimal) if dialect else (",", ".")
    if output is None:
        result.to_csv(sys.stdout, index=False, sep=sep, decimal=decimal)
        return
    _write_table(result, output, sep=sep, decimal=decimal)
    typer.echo(f"wrote {len(result)} predictions to {output}", err=True)


@app.command()
def generate(
    run: RunOrBundleArg,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue.")] = "",
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", "-n", min=1, help="Most tokens to add.")
    ] = 200,
    temperature: Annotated[
        float, typer.Option("--temperature", "-t", min=0.0, help="0 = greedy; higher = bolder.")
    ] = 0.8,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, help="Sample among the k likeliest tokens.")
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option("--top-p", min=0.0, max=1.0, help="Sample within this probability mass."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling.")] = 0,
) -> None:
    """Stream text from a language model (model.arch gpt, or its exported bundle), continuing
    the prompt."""
    from megalith.runtime.predictor import is_bundle

    if top_p == 0:
        _fail("--top-p must be greater than 0")
    if is_bundle(run):
        from megalith.runtime import load_bundle

        if top_p is not None:
            _fail("--top-p is not available with a bundle; use --top-k or --temperature")
        bundle = load_bundle(run)
        text = bundle.generate(
            prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed
        )
        sys.stdout.write(f"{prompt}{text}\n")
        return
    from megalith.generation import Sampling
    from megalith.run import Run

    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    pieces = Run.load(run).generate(
        prompt, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed
    )
    sys.stdout.write(prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@app.command()
def merge(
    run: RunArg,
    output: Annotated[Path, typer.Argument(help="The folder to write (new or empty).")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a non-empty folder.")
    ] = False,
) -> None:
    """Write a pretrained run's model (LoRA adapter merged in) as a Hugging Face model folder."""
    from megalith.run import Run

    folder = Run.load(run).merge(output, overwrite=overwrite)
    typer.echo(f"wrote {folder}: load it with transformers' from_pretrained", err=True)


@app.command()
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
    from megalith.run import Run

    folder = Run.load(run).export(output, format=format, overwrite=overwrite, exporter=exporter)
    typer.echo(f"wrote {folder} (ONNX Runtime matches PyTorch on the test rows)", err=True)


@app.command()
def explain(
    run: RunArg,
    data: Annotated[
        Path | None, typer.Option("--data", help="Rows to explain (default: the test split).")
    ] = None,
    rows: Annotated[int | None, typer.Option("--rows", help="Explain the first N rows.")] = None,
    row_ids: Annotated[
        str | None, typer.Option("--row-ids", help="Explain these rows: 0,5,9 (0-based).")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="ig, saliency or occlusion.")] = "ig",
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
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder to write (default RUN/explain).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace earlier explanations there.")
    ] = False,
) -> None:
    """Attribute predictions to inputs (Captum) and write explanations.jsonl, summary.json,
    PNG maps and explain.html, with trust figures (completeness, deletion vs random)."""
    from megalith.explain import write_explanations
    from megalith.run import Run
    from megalith.runs import RunDir

    try:
        ids = [int(i) for i in row_ids.split(",")] if row_ids else None
    except ValueError:
        _fail(f"--row-ids {row_ids}: give row numbers separated by commas, like 0,5,9")
    if output is not None and RunDir(run).owns(output):
        _fail(f"--output {output} is one of the run directory's own folders; choose another")
    loaded = Run.load(run)
    explanations = loaded.explain(
        data, rows=rows, row_ids=ids, method=method, target=target, output_name=output_name,
        steps=steps, internal_batch_size=internal_batch_size,
    )  # fmt: skip
    folder = write_explanations(explanations, output or run / "explain", overwrite=overwrite)
    trust = ", ".join(f"{k} {'passed' if v['passed'] else 'FAILED'}" for k, v in
                      explanations.summary["trust"].items())  # fmt: skip
    typer.echo(f"wrote {folder} ({len(explanations.rows)} rows; {trust})", err=True)


@app.command()
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
    language models, GET /health and /metadata; binds 127.0.0.1 by default."""
    from megalith.serving import serve as run_server

    if backend not in ("auto", "onnx", "torch"):
        _fail(f"--backend {backend}: choose auto, onnx or torch")
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


@app.command()
def report(run: RunArg) -> None:
    """Write RUN/report.html (self-contained) and the plots as RUN/plots/*.png."""
    from megalith.evaluate.report import write_report

    path = write_report(run)
    typer.echo(f"wrote {path} (plots in {path.parent / 'plots'})", err=True)


@app.command()
def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Run directories written by `megalith train`.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the HTML comparison.")
    ] = Path("compare.html"),
) -> None:
    """Print runs' settings and test metrics side by side; write their curves to compare.html."""
    from rich.console import Console

    from megalith.evaluate.compare import (
        compare_runs,
        comparison_table,
        summarize_run,
        write_comparison,
    )

    summaries = [summarize_run(path) for path in runs]
    Console().print(comparison_table(compare_runs(summaries)))
    write_comparison(summaries, output)
    typer.echo(f"wrote {output}", err=True)


@app.command()
def init(
    data: Annotated[
        str,
        typer.Argument(
            help="A table (.csv, .parquet, .jsonl), an image folder, a text corpus (.txt / .md "
            "file or a folder of them), or builtin:NAME."
        ),
    ],
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="The column to predict (not for a text corpus)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the config here instead of stdout.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Run name (default: the file's name).")
    ] = None,
    pretrained: Annotated[
        Path | None,
        typer.Option(
            "--pretrained",
            help="Fine-tune this local Hugging Face model (a text table or a corpus).",
        ),
    ] = None,
    delimiter: Annotated[
        str,
        typer.Option(
            "--delimiter", help="A CSV file's column separator: , ; tab | (default: detected)."
        ),
    ] = "auto",
    decimal: Annotated[
        str,
        typer.Option("--decimal", help="A CSV file's decimal mark: . or , (default: detected)."),
    ] = "auto",
) -> None:
    """Inspect the data and write a working config: predicting TARGET from a table, or a
    language model of a text corpus."""
    import os

    import pydantic

    from megalith.data.infer import infer_config, render_config
    from megalith.data.infer_text import infer_language_model, with_pretrained
    from megalith.data.sources import DataConfig, load_data

    def as_written(path: str) -> str:  # relative to the config file, which may live elsewhere
        if output is None or path.startswith("builtin:"):
            return path
        return os.path.relpath(Path(path).resolve(), output.resolve().parent)

    corpus = _corpus_kind(data)
    if corpus is not None and target not in (None, "text"):
        _fail(f"{data} is a text corpus: it has no column '{target}'; leave out --target")
    if corpus is None and target is None:
        _fail(f"give --target COLUMN: the column of {data} to predict")
    try:
        reading = DataConfig(
            source=data,
            format="text" if corpus == "folder" else "auto",
            delimiter=delimiter,
            decimal=decimal,
        )
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        flag = "--" + str(problem["loc"][0]) if problem["loc"] else "--delimiter / --decimal"
        _fail(f"{flag}: {problem['msg'].removeprefix('Value error, ')}")
    table = load_data(reading)
    source = as_written(data)
    if corpus is not None:
        inference = infer_language_model(table, source=source, folder=corpus == "folder", name=name)
    else:
        assert target is not None  # refused above
        inference = infer_config(table, target, source=source, name=name)
    if pretrained is not None:
        inference = with_pretrained(inference, as_written(str(pretrained)))
    for notice in inference.notices:
        typer.echo(f"note: {notice}", err=True)
    text = render_config(inference)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text)
        except OSError as error:
            raise cannot_write(output, error, _FILE_HINT) from error
        typer.echo(f"wrote {output}; train it with: megalith train {output}", err=True)


@app.command()
def datasets() -> None:
    """List the built-in datasets (they work offline)."""
    from megalith.data.builtin import BUILTIN_DATASETS

    for dataset in BUILTIN_DATASETS.values():
        typer.echo(f"builtin:{dataset.name:<26} {dataset.description}")


@app.command()
def schema() -> None:
    """Print the config's JSON Schema (for editor completion and validation)."""
    import json

    from megalith.config import Config

    typer.echo(json.dumps(Config.model_json_schema(), indent=2))


def _write_table(frame: Any, path: Path, *, sep: str = ",", decimal: str = ".") -> None:
    """Predictions to .csv (with this separator and decimal mark), .parquet or .jsonl, through
    a temporary file renamed into place."""
    writers = {
        ".csv": lambda tmp: frame.to_csv(tmp, index=False, sep=sep, decimal=decimal),
        ".parquet": lambda tmp: frame.to_parquet(tmp, index=False),
        ".jsonl": lambda tmp: frame.to_json(tmp, orient="records", lines=True),
        ".ndjson": lambda tmp: frame.to_json(tmp, orient="records", lines=True),
    }
    suffix = path.suffix.lower()
    if suffix not in writers:
        _fail(f"--output {path}: unknown suffix '{suffix}'; use .csv, .parquet or .jsonl")
    tmp = path.with_name(path.name + ".tmp")
    try:
        writers[suffix](tmp)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, error, _FILE_HINT) from error


def _corpus_kind(data: str) -> str | None:
    """'file' or 'folder' when `data` is a text corpus (a builtin one is a 'file'), else None."""
    from megalith.data.builtin import BUILTIN_DATASETS
    from megalith.data.corpus import TEXT_SUFFIXES
    from megalith.data.sources import IMAGE_SUFFIXES

    if data.startswith("builtin:"):
        dataset = BUILTIN_DATASETS.get(data.removeprefix("builtin:"))
        return "file" if dataset is not None and dataset.arch == "gpt" else None
    path = Path(data)
    if path.is_file():
        return "file" if path.suffix.lower() in TEXT_SUFFIXES - {".py"} else None
    if path.is_dir():
        suffixes = {p.suffix.lower() for p in path.rglob("*") if p.is_file()}
        if suffixes & IMAGE_SUFFIXES:
            return None
        return "folder" if suffixes & TEXT_SUFFIXES else None
    return None


def _fail(message: str) -> NoReturn:
    raise MegalithError(message)


def main() -> None:
    """Entry point: a user's mistake is one line on stderr and exit code 2."""
    try:
        app()
    except MegalithError as error:
        if _state["debug"] or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except ModuleNotFoundError as error:
        hint = missing_extra(error)
        if hint is None or _state["debug"] or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {hint}", err=True)
        sys.exit(hint.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
