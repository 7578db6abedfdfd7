"""The command line: one small function per verb, heavy imports only inside the verb."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from megalith.cli_args import FILE_HINT, RunArg, RunOrBundleArg, fail
from megalith.cli_compress import compress
from megalith.cli_init import init
from megalith.cli_privacy import audit_privacy
from megalith.cli_recommend import recommend
from megalith.cli_stages import explain, export, serve
from megalith.cli_transcribe import transcribe
from megalith.cli_tune import tune
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
    teacher: Annotated[
        Path | None,
        typer.Option("--teacher", help="Distil from this trained run (as teacher: in the config)."),
    ] = None,
    max_restarts: Annotated[
        int,
        typer.Option(
            "--max-restarts",
            help="Restart the processes up to R times when one dies (torchrun); the run "
            "continues from its last checkpoint.",
        ),
    ] = 0,
) -> None:
    """Train a model from a config and write its run directory."""
    import os

    if config is None and resume is None:
        fail("give a CONFIG to train, or --resume RUN_DIR to continue a run")
    if (devices != 1 or max_restarts) and "WORLD_SIZE" not in os.environ:
        from megalith.cli_launch import launch_training

        code = launch_training(
            config,
            output_dir=output_dir,
            overrides=set_ or [],
            resume=resume,
            overwrite=overwrite,
            teacher=teacher,
            devices=devices,
            max_restarts=max_restarts,
            debug=_state["debug"],
        )
        raise typer.Exit(code)

    from megalith.pipeline import train as run_training

    source: Any = config
    run_training(
        source,
        output_dir=output_dir,
        overrides=set_ or [],
        resume=resume,
        overwrite=overwrite,
        teacher=teacher,
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

    from megalith.loading import load

    metrics = load(run).evaluate(data)
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
            fail(f"--output {output} is one of the run directory's own files; choose another path")
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
        fail("--top-p must be greater than 0")
    if is_bundle(run):
        from megalith.runtime import load_bundle

        if top_p is not None:
            fail("--top-p is not available with a bundle; use --top-k or --temperature")
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


app.command()(export)
app.command()(explain)
app.command()(compress)
app.command()(serve)
app.command()(tune)
app.command()(recommend)
app.command()(transcribe)
app.command("audit-privacy")(audit_privacy)


@app.command()
def report(run: RunArg) -> None:
    """Write RUN/report.html (self-contained) and the plots as RUN/plots/*.png."""
    from megalith.evaluate.report import write_report
    from megalith.loading import load
    from megalith.recommend.run import RecommenderRun

    loaded = load(run)
    if isinstance(loaded, RecommenderRun):  # ranking tables, no plots
        typer.echo(f"wrote {loaded.write_report()}", err=True)
        return
    path = write_report(loaded)
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


app.command()(init)


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
        fail(f"--output {path}: unknown suffix '{suffix}'; use .csv, .parquet or .jsonl")
    tmp = path.with_name(path.name + ".tmp")
    try:
        writers[suffix](tmp)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, error, FILE_HINT) from error


def main() -> None:
    """Entry point: a user's mistake is one line on stderr and exit code 2."""
    try:
        app()
    except MegalithError as error:
        if _state["debug"] or "--debug" in sys.argv:
            raise
        from megalith.training.worker_errors import say_error

        if say_error(f"error: {error}"):  # once, not once per process of `--devices N`
            typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except ModuleNotFoundError as error:
        hint = missing_extra(error)
        if hint is None or _state["debug"] or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {hint}", err=True)
        sys.exit(hint.exit_code)
    except MemoryError:  # the checks before each large allocation missed one: still one line
        if _state["debug"] or "--debug" in sys.argv:
            raise
        from megalith.memory import available_bytes, format_bytes

        typer.echo(
            f"error: ran out of memory ({format_bytes(available_bytes())} available now); "
            "use smaller data or a smaller model, or rerun with --debug to see where",
            err=True,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
