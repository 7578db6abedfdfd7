"""The end of a training run: weights saved, thresholds chosen, splits evaluated against
baselines, eval.json written, the results printed and the report written (rank 0 only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from megalith.data.preprocess import Preprocessor
from megalith.data.tensors import TensorTable
from megalith.device import resolve_device, resolve_precision
from megalith.errors import cannot_write
from megalith.models import PretrainedConfig
from megalith.models.pretrained import ARCHITECTURE_DIR, PretrainedModel
from megalith.models.pretrained_files import save_adapter, save_architecture
from megalith.run import Run
from megalith.runs import RunDir, save_weights_atomically


def save_and_evaluate(
    run: Run,
    run_dir: RunDir,
    tensors: dict[str, TensorTable],
    training: dict[str, Any],
    extra: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """Save the trained run's weights (and pretrained files), choose `threshold: auto`, score
    val and test, judge them against baselines, and write eval.json; returns its contents."""
    model, cfg, preprocessor = run.model, run.config, run.preprocessor
    save_weights_atomically(model, run_dir.weights)
    if isinstance(model, PretrainedModel) and isinstance(cfg.model, PretrainedConfig):
        _save_pretrained_files(model, preprocessor, run_dir.path, cfg.model.path, console)
    if _choose_thresholds(run, tensors["val"] if len(tensors["val"]) else tensors["train"]):
        preprocessor.save(run_dir.preprocessor)
    scores: dict[str, Any] = {
        name: run.evaluate_tensors(tensors[name]) for name in ("val", "test") if len(tensors[name])
    }
    scores["training"] = training
    scores.update(extra)
    _judge_results(run, tensors, scores, training["seconds"])
    run_dir.write_json(run_dir.eval, scores)
    return scores


def publish_results(run: Run, run_dir: RunDir, scores: dict[str, Any], console: Console) -> None:
    """Print the results table and warnings, and write report.html."""
    _print_summary(console, scores, run_dir)
    from megalith.evaluate.report import write_report_safely  # matplotlib loads only here

    write_report_safely(run, console)


def _choose_thresholds(run: Run, rows: TensorTable) -> bool:
    """Binary outputs with `threshold: auto` get the threshold with the best F1 on `rows`
    (the val split, or train when there is none); True when one was chosen."""
    from megalith.batching import forward_in_batches
    from megalith.data.features.binary import BinaryOutputEncoder
    from megalith.evaluate.thresholds import best_f1_threshold

    auto = [
        encoder
        for encoder in run.preprocessor.outputs
        if isinstance(encoder, BinaryOutputEncoder) and encoder.config.threshold == "auto"
    ]
    if not auto:
        return False
    device = resolve_device(run.config.train.device)
    dtype = resolve_precision(run.config.train.precision, device)
    batch_size = run.config.train.eval_batch_size
    try:
        outputs = forward_in_batches(run.model.to(device), rows, batch_size, device, dtype)
    finally:
        run.model.cpu()
    for encoder in auto:
        name = encoder.config.name
        probabilities = torch.sigmoid(outputs[name].float()).numpy()
        encoder.chosen_threshold = best_f1_threshold(probabilities, rows.targets[name].numpy())
    return True


def _tokenizer_source(preprocessor: Preprocessor, default: str) -> str:
    """Where the run's pretrained tokenizer was read from."""
    from megalith.data.tokenizers import PretrainedTokenizer

    encoders: list[Any] = [*preprocessor.inputs, *preprocessor.outputs]
    for encoder in encoders:
        tokenizer = getattr(encoder, "tokenizer", None)
        if isinstance(tokenizer, PretrainedTokenizer) and tokenizer.source:
            return tokenizer.source
    return default


def _save_pretrained_files(
    model: PretrainedModel,
    preprocessor: Preprocessor,
    run: Path,
    model_path: str,
    console: Console,
) -> None:
    """RUN/pretrained (config and tokenizer, so a full fine-tune needs nothing else, without
    references to custom code) and, for LoRA, RUN/adapter in peft's format."""
    folder = run / ARCHITECTURE_DIR
    try:
        notices = save_architecture(model, _tokenizer_source(preprocessor, model_path), folder)
        for notice in notices:
            console.print(f"[yellow]note[/]: {notice}")
        if model.lora:
            save_adapter(model, run / "adapter")
    except OSError as error:
        raise cannot_write(folder, error) from error


def _judge_results(
    run: Run, tensors: dict[str, TensorTable], scores: dict[str, Any], train_seconds: float
) -> None:
    """Add eval.json's `baselines` (unless train.baselines is off) and `warnings`."""
    from megalith.evaluate.checks import check_run

    if run.config.train.baselines and len(tensors["test"]):
        from megalith.evaluate.baselines import budget_for, fit_baselines

        scores["baselines"] = fit_baselines(
            run.preprocessor.input_specs,
            run.preprocessor.output_specs,
            tensors["train"],
            tensors["test"],
            budget=budget_for(train_seconds),
            seed=run.config.seed,
        )
        if scores.get("privacy"):  # what epsilon does not cover, said where the budget is
            from megalith.evaluate.baselines import BASELINES_NOT_PRIVATE

            scores["privacy"]["baselines"] = BASELINES_NOT_PRIVATE
    scores["warnings"] = check_run(run, tensors["test"], scores)


def _print_summary(console: Console, scores: dict[str, Any], run_dir: RunDir) -> None:
    from rich.table import Table as RichTable

    from megalith.evaluate.baselines import (
        BASELINES_NOT_PRIVATE,
        baseline_columns,
        baseline_heading,
    )
    from megalith.evaluate.checks import warning_lines

    splits = [s for s in ("val", "test") if s in scores]
    references = baseline_columns(scores)
    table = RichTable(title="results")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    for kind in references:
        table.add_column(baseline_heading(kind, scores), justify="right")
    for metric in scores[splits[-1]] if splits else []:
        values = [f"{scores[s].get(metric, float('nan')):.4f}" for s in splits]
        for column in references.values():
            values.append(f"{column[metric]:.4f}" if metric in column else "-")
        table.add_row(metric, *values)
    console.print(table)
    if references and scores.get("privacy"):
        console.print(f"[yellow]note[/]: {BASELINES_NOT_PRIVATE}")
    for output, entry in (scores.get("baselines") or {}).items():
        if entry.get("note"):
            console.print(f"[yellow]note[/]: baselines of {output}: {entry['note']}")
    for line in warning_lines(scores.get("warnings", [])):
        console.print(f"[bold red]WARNING[/]: {line}")
    console.print(f"run written to [bold]{run_dir.path}[/]")
