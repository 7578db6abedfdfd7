"""report.html: one self-contained page that explains a run, built from its directory alone.

`write_report` loads what the run directory holds (config, eval.json, metrics.jsonl, the model and
its preprocessing), re-derives the test split from the data source exactly as training did,
predicts on it, and writes RUN/report.html plus every plot as RUN/plots/NAME.png.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console

from megalith.config import is_language_model
from megalith.errors import MegalithError, RunError
from megalith.evaluate import plots
from megalith.evaluate.checks import warning_lines
from megalith.evaluate.html import Plot, format_number, render_page, write_atomically
from megalith.evaluate.privacy_section import privacy_card, privacy_section
from megalith.evaluate.speech_report import speech_section
from megalith.models.asr import ASRConfig
from megalith.models.seq2seq import Seq2SeqConfig
from megalith.runs import RunDir
from megalith.structured import parse_json

if TYPE_CHECKING:
    import pandas as pd

    from megalith.data.tensors import TensorTable
    from megalith.evaluate.diagnostics import OutputSection
    from megalith.run import Run

_NOT_CURVES = frozenset({"epoch", "step", "lr", "time"})


@dataclass
class MetricsHistory:
    """metrics.jsonl as per-epoch records and the train-loss records logged every N steps."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(epoch numbers, values) of one per-epoch metric; missing values are NaN."""
        records = [r for r in self.epochs if key in r]
        return [int(r["epoch"]) for r in records], [_float(r[key]) for r in records]

    def curve_keys(self) -> list[str]:
        """Per-epoch metric names, in the order they were first logged."""
        keys = dict.fromkeys(k for record in self.epochs for k in record if k not in _NOT_CURVES)
        return list(keys)


def read_metrics_log(path: Path) -> MetricsHistory:
    """Parse metrics.jsonl (epoch records carry 'time'; step records only step, epoch, loss)."""
    history = MetricsHistory()
    if not path.is_file():
        return history
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise RunError(f"{path}: cannot read the metrics log ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = parse_json(line, f"{path}: line {number}", RunError)
        except json.JSONDecodeError as error:
            raise RunError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise RunError(f"{path}: line {number} is not a JSON object")
        (history.epochs if "time" in record else history.steps).append(record)
    return history


def learning_curve_plots(history: MetricsHistory) -> list[Plot]:
    """Loss (train and val) and each validation metric per epoch; train loss per logged step."""
    figures = []
    losses = {k: history.series(k) for k in ("train/loss", "val/loss") if history.series(k)[0]}
    if losses:
        figure = plots.line_plot(losses, title="Loss per epoch", xlabel="epoch", ylabel="loss")
        figures.append(Plot("loss", "Loss per epoch", plots.figure_png(figure)))
    for key in history.curve_keys():
        if key in losses or not key.startswith("val/"):
            continue
        name = key.removeprefix("val/")
        figure = plots.line_plot(
            {key: history.series(key)}, title=f"{name} per epoch", xlabel="epoch", ylabel=name
        )
        figures.append(Plot(f"metric-{name.replace('/', '-')}", name, plots.figure_png(figure)))
    steps = [r for r in history.steps if r.get("train/loss") is not None]
    if len(steps) >= 2:
        line = ([int(r["step"]) for r in steps], [_float(r["train/loss"]) for r in steps])
        figure = plots.line_plot(
            {"train/loss": line}, title="Train loss per step", xlabel="step", ylabel="loss"
        )
        figures.append(Plot("loss-by-step", "Train loss per step", plots.figure_png(figure)))
    return figures


def write_report(run: Run | str | Path) -> Path:
    """Write RUN/report.html and RUN/plots/*.png; returns the report's path.

    Raises:
        RunError: the run directory is incomplete.
    """
    from megalith.run import Run

    loaded = run if isinstance(run, Run) else Run.load(run)
    context = gather_report(loaded)
    folder = loaded.path / "plots"
    folder.mkdir(exist_ok=True)
    all_plots = [*context["curves"], *(p for o in context["outputs"] for p in o.plots)]
    for plot in all_plots:
        write_atomically(folder / f"{plot.slug}.png", plot.png)
    path = loaded.path / "report.html"
    write_atomically(path, render_page("report.html.j2", **context))
    return path


def write_report_safely(run: Run, console: Console) -> None:
    """write_report for the end of training: a failure is a warning, never a lost run."""
    try:
        path = write_report(run)
    except Exception as error:  # the trained run is already saved; keep it whatever happens here
        console.print(
            f"[yellow]warning[/]: report.html was not written ({type(error).__name__}: {error}); "
            f"retry with `megalith --debug report {run.path}`"
        )
        return
    console.print(f"report: [bold]{path}[/]")


def gather_report(run: Run) -> dict[str, Any]:
    """Everything report.html.j2 shows, as plain values and rendered plots."""
    scores = run.metrics
    training = scores.get("training", {})
    context: dict[str, Any] = {
        "title": run.config.name,
        "run_path": str(run.path.resolve()),
        "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cards": _cards(scores, training, run),
        "environment": _environment_rows(training, run),
        "metrics": _metrics_table(scores),
        "warnings": warning_lines(scores.get("warnings", [])),
        "baselines": _baseline_notes(scores),
        "teacher": _teacher_comparison(run, scores),
        "privacy": privacy_section(scores, run.path),
        "config_yaml": RunDir(run.path).config.read_text(encoding="utf-8"),
        "curves": learning_curve_plots(read_metrics_log(RunDir(run.path).metrics)),
        "data": None,
        "outputs": [],
        "notes": [],
        "samples": [],
        "speech": None,
        "explanations": _explanations(run),
    }
    try:
        table, splits = run.data_splits()
    except MegalithError as error:
        context["notes"].append(
            f"The data could not be read again, so the data summary and the test-split "
            f"sections are left out: {error}"
        )
        return context
    context["data"] = _data_section(run, splits)
    if is_language_model(run.config):  # a language model: show what it writes
        context["samples"] = ["".join(run.generate(max_new_tokens=160, seed=s)) for s in (0, 1, 2)]
        context["samples_how"] = "160 tokens from an empty prompt, temperature 0.8, seeds 0-2"
        return context
    test_frame = splits["test"]
    if isinstance(run.config.model, ASRConfig):  # a speech recognizer: what it writes
        context["speech"] = speech_section(run, test_frame, table.base_dir)
        return context
    if isinstance(run.config.model, Seq2SeqConfig):  # a seq2seq model: show what it writes
        context["samples"] = _written_samples(run, test_frame.head(12))
        context["samples_how"] = "the first test rows: input → output written (reference)"
        return context
    if len(test_frame):
        origin = f"{table.origin} (test split)"
        test = run.preprocessor.transform(test_frame, base_dir=table.base_dir, origin=origin)
        if len(test):
            context["outputs"] = _output_sections(run, test, test_frame)
    return context


def _explanations(run: Run) -> dict[str, Any] | None:
    """What `megalith explain` left in RUN/explain, for a link: the page, rows, method and the
    verdict of each trust figure; None when the run has not been explained there."""
    folder = RunDir(run.path).explanations
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (folder / "explain.html").is_file() or not isinstance(summary, dict):
        return None
    trust = summary.get("trust") or {}
    return {
        "href": f"{folder.name}/explain.html",
        "rows": summary.get("rows"),
        "method": summary.get("method_name") or summary.get("method"),
        "verdicts": [
            (name, "passed" if figures.get("passed") else "FAILED")
            for name, figures in trust.items()
            if isinstance(figures, dict)
        ],
    }


def _written_samples(run: Run, rows: pd.DataFrame) -> list[str]:
    """'input → written' per row, with the reference when the model wrote something else."""
    source, target = run.config.inputs[0].name, run.config.outputs[0].name
    written = run.predict(rows.drop(columns=[target]))[target]
    samples = []
    for given, expected, output in zip(rows[source], rows[target], written, strict=True):
        verdict = "✓" if str(output).strip() == str(expected).strip() else f"(expected: {expected})"
        samples.append(f"{given} → {output}   {verdict}")
    return samples


def _data_section(run: Run, splits: dict[str, pd.DataFrame]) -> dict[str, Any]:
    from megalith.evaluate.summary import class_balance, describe_columns, split_sizes

    return {
        "splits": split_sizes(splits),
        "columns": describe_columns(run.preprocessor, splits["train"]),
        "balance": class_balance(run.preprocessor, splits),
    }


def _output_sections(run: Run, test: TensorTable, frame: pd.DataFrame) -> list[OutputSection]:
    """One section per output from the model's predictions on the test split."""
    from megalith.batching import forward_in_batches
    from megalith.evaluate import diagnostics

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:  # fp32 on whatever device is here: the report may be made far from where it trained
        outputs = forward_in_batches(
            run.model.to(device), test, run.config.train.eval_batch_size, device, None
        )
    finally:
        run.model.cpu()
    sections = []
    for encoder in run.preprocessor.outputs:
        config: Any = encoder.config
        state = encoder.state()
        logits, target = outputs[config.name], test.targets[config.name]
        if config.type == "number":
            predicted = logits.double().numpy() * state["std"] + state["mean"]
            truth = target.double().numpy() * state["std"] + state["mean"]
            sections.append(diagnostics.regression_section(config.name, predicted, truth))
            continue
        classes = state["classes"] if config.type == "category" else state["values"]
        threshold = getattr(encoder, "threshold", 0.5)  # the decision predict applies
        result = diagnostics.as_classification(config.type, classes, logits, target, threshold)
        sections.append(diagnostics.classification_section(config.name, result, test, frame))
    return sections


def _cards(scores: dict[str, Any], training: dict[str, Any], run: Run) -> list[tuple[str, str]]:
    """The headline numbers at the top of the page."""
    test = scores.get("test", {})
    cards = privacy_card(scores)  # a private run's budget comes first
    cards += [(f"test {name}", format_number(value)) for name, value in test.items()]
    if "seconds" in training:
        cards.append(("training time", _duration(training["seconds"])))
    cards.append(("parameters", format_number(_parameters(training, run))))
    if training.get("samples_per_second") is not None:
        cards.append(("samples / s", format_number(round(training["samples_per_second"]))))
    return cards


def _environment_rows(training: dict[str, Any], run: Run) -> list[tuple[str, str]]:
    rows = [
        ("Python", training.get("python")),
        ("PyTorch", training.get("torch")),
        ("Megalith", training.get("megalith")),
        ("device", training.get("device")),
        ("processes", training.get("processes")),
        ("epochs run", training.get("epochs")),
        ("optimizer steps", training.get("steps")),
        ("best epoch", training.get("best_epoch")),
        ("stopped early", training.get("stopped_early")),
        ("training time", _duration(training["seconds"]) if "seconds" in training else None),
        ("parameters", _parameters(training, run)),
        ("throughput (samples / s)", training.get("samples_per_second")),
        ("model", run.config.model.arch),
    ]
    return [(label, format_number(value)) for label, value in rows if value is not None]


def _metrics_table(scores: dict[str, Any]) -> dict[str, Any]:
    """The network's val and test metrics, then the baselines' test metrics (when fitted)."""
    from megalith.evaluate.baselines import baseline_columns, baseline_heading

    splits = [s for s in ("val", "test") if s in scores]
    references = baseline_columns(scores)
    names = list(dict.fromkeys(name for s in splits for name in scores[s]))
    rows = [
        [
            name,
            *(format_number(scores[s].get(name)) for s in splits),
            *(format_number(column.get(name)) for column in references.values()),
        ]
        for name in names
    ]
    headings = [baseline_heading(kind, scores) for kind in references]
    return {"splits": splits + headings, "rows": rows}


def _teacher_comparison(run: Run, scores: dict[str, Any]) -> dict[str, Any] | None:
    """A distilled run's teacher.json beside its own figures: parameters and test metrics."""
    path = run.path / "teacher.json"
    if not path.is_file():
        return None
    try:
        record = parse_json(path.read_text(encoding="utf-8"), str(path), RunError)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path}: cannot read the run's teacher record ({error})") from None
    sizes = record.get("parameters", {})
    teacher, student = sizes.get("teacher"), sizes.get("student")
    rows = [["parameters", format_number(teacher), format_number(student), ""]]
    if teacher and student:
        rows[0][3] = f"{student / teacher:.3g}x"
    theirs, mine = record.get("teacher_test_metrics", {}), scores.get("test", {})
    for name in dict.fromkeys([*mine, *theirs]):
        a, b = theirs.get(name), mine.get(name)
        change = format_number(b - a) if a is not None and b is not None else ""
        rows.append([f"test {name}", format_number(a), format_number(b), change])
    return {**record, "rows": rows}


def _baseline_notes(scores: dict[str, Any]) -> list[str]:
    """One line per output: how its linear baseline was fitted, and any note."""
    lines = []
    for output, entry in (scores.get("baselines") or {}).items():
        fit = entry.get("linear_fit")
        how = (
            f"{fit['model']} on {fit['features']:,} features and {fit['train_rows']:,} train "
            f"rows in {fit['seconds']:.2f} s"
            if fit
            else ""
        )
        lines.append(f"{output}: " + "; ".join(part for part in (how, entry.get("note")) if part))
    return lines


def _parameters(training: dict[str, Any], run: Run) -> int:
    if "parameters" in training:
        return int(training["parameters"])
    return sum(p.numel() for p in run.model.parameters())


def _duration(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {rest:02.0f} s" if minutes else f"{rest:.1f} s"


def _float(value: Any) -> float:
    return float(value) if value is not None else math.nan
