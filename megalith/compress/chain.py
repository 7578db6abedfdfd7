"""The compression chain: each step applied to the last accepted model, measured, and gated.

    OUT/
      original-fp32/      the original run's fp32 ONNX bundle: the latency baseline
      1-distill/          a run directory (with its own bundle/ for timing)
      2-prune/            a run directory (with bundle/)
      3-quantize/         an int8 bundle
      compression.json    every model's measurements and verdicts
      compression.html    the same as one self-contained page

OUT is built beside its final place and moved there whole (megalith.stage_folder), so a failed
compression leaves an earlier OUT exactly as it was.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from megalith.compress import PAGE_FILE, RESULT_FILE
from megalith.compress.settings import CompressSettings
from megalith.errors import RunError, missing_extra
from megalith.stage_folder import check_output_folder, staged_folder

if TYPE_CHECKING:
    from megalith.run import Run

StepFunction = Callable[["Run", Path, Console], "Run | Path"]
"""A step: (the model to start from, the folder to write, console) -> the run it wrote, or the
path of the bundle it wrote (a bundle ends the chain)."""
BASELINE = "original-fp32"


@dataclass(frozen=True)
class Step:
    """A named step of the chain."""

    name: str
    apply: StepFunction


def named_step(name: str, settings: CompressSettings, bundles: dict[Path, Path]) -> Step:
    """The built-in step `name` (distill, prune, quantize) with its settings; `bundles` maps
    each run of the chain to the fp32 bundle exported for timing it (quantize starts there)."""
    if name == "quantize":

        def quantize(run: Run, folder: Path, console: Console) -> Path:
            from megalith.compress.quantize import quantize_run

            fp32 = bundles.get(run.path)
            return quantize_run(
                run,
                folder,
                scheme=settings.scheme,
                console=console,
                calibration_rows=settings.calibration_rows,
                fp32_bundle=fp32,
            )

        return Step(name, quantize)
    if name == "prune":

        def prune(run: Run, folder: Path, console: Console) -> Run:
            from megalith.compress.prune import prune_run

            return prune_run(
                run,
                folder,
                amount=settings.prune,
                by=settings.prune_by,
                finetune_epochs=settings.finetune_epochs,
                console=console,
            )

        return Step(name, prune)

    def distill(run: Run, folder: Path, console: Console) -> Run:
        from megalith.compress.distill import distill_run

        return distill_run(
            run,
            folder,
            width=settings.distill_width,
            epochs=settings.distill_epochs,
            console=console,
        )

    return Step(name, distill)


_STEP_MODULES = {"prune": "torch_pruning"}
"""The package a named step needs beyond training and ONNX (`compress` extra; ONNX is checked
by megalith.compress.compress for every chain, as each model is timed as an ONNX bundle)."""


def _check_installed(step: str) -> None:
    """Raises: MegalithError naming the extra to install, before any step runs."""
    module = _STEP_MODULES.get(step)
    if module is not None and importlib.util.find_spec(module) is None:
        error = missing_extra(ModuleNotFoundError(name=module))
        assert error is not None  # every module above belongs to an extra
        raise error


def resolve_steps(
    steps: Sequence[str | StepFunction], settings: CompressSettings, bundles: dict[Path, Path]
) -> list[Step]:
    """Named steps (in settings order, already checked) and callables, as Steps.

    Raises:
        RunError: a step follows quantize (whose output is a bundle).
        MegalithError: a named step's package (Torch-Pruning) is not installed.
    """
    resolved = []
    for step in steps:
        if isinstance(step, str):
            _check_installed(step)
            resolved.append(named_step(step, settings, bundles))
        else:
            name = re.sub(r"[^A-Za-z0-9.-]+", "_", getattr(step, "__name__", "")).strip("_.")
            resolved.append(Step(name or "custom", step))
    names = [step.name for step in resolved]
    if "quantize" in names[:-1]:
        raise RunError(
            f"steps {','.join(names)}: quantize writes a bundle, so it must be the last step"
        )
    return resolved


def run_chain(
    run: Run,
    steps: Sequence[Step],
    settings: CompressSettings,
    target: Path,
    *,
    bundles: dict[Path, Path],
    overwrite: bool,
    console: Console,
) -> dict[str, Any]:
    """Apply, measure and gate every step into `target` (staged); returns compression.json.

    Raises:
        RunError: `target` holds other files (or an earlier compression, without `overwrite`),
            or a step failed (OUT is left as it was).
    """
    from megalith.compress.page import compression_page
    from megalith.compress.record import Recorder

    check_output_folder(
        target, overwrite, markers=[RESULT_FILE], holds="a compression", replace="it"
    )
    threads = settings.threads or os.cpu_count() or 1
    with staged_folder(target) as folder:
        recorder = Recorder(run, folder, threads, settings, bundles)
        recorder.measure_original(run.export(folder / BASELINE))
        current: Run | Path = run
        for number, step in enumerate(steps, start=1):
            if isinstance(current, Path):  # checked beforehand for the named steps
                raise RunError(
                    f"step {step.name} follows a step that wrote a bundle ({current})"
                    "; a bundle ends the chain"
                )
            name = f"{number}-{step.name}"
            console.print(
                f"compress: step {number}, {step.name} -> {target / name} (built in {folder / name}"
                ", moved into place when every step is done: the paths printed below name it)"
            )
            result = step.apply(current, folder / name, console)
            if recorder.measure_step(step.name, result) or settings.force:
                current = result
        recorder.retime_in_turn()
        summary = recorder.summary(target, [step.name for step in steps])
        (folder / RESULT_FILE).write_text(json.dumps(summary, indent=1), encoding="utf-8")
        (folder / PAGE_FILE).write_text(compression_page(summary), encoding="utf-8")
        _record_final_paths(folder, target)
    return summary


_RECORD_SUFFIXES = (".json", ".yaml", ".html")


def _record_final_paths(folder: Path, target: Path) -> None:
    """Rewrite the staged folder's path as `target` in the steps' records (pruning.json's
    source, a report's heading), so that they name where the runs live once moved."""
    moves = [(str(folder.resolve()), str(target.resolve())), (str(folder), str(target))]
    for path in folder.rglob("*"):
        if path.suffix not in _RECORD_SUFFIXES or not path.is_file():
            continue
        text = original = path.read_text(encoding="utf-8")
        for staged, final in moves:
            text = text.replace(staged, final)
        if text != original:
            path.write_text(text, encoding="utf-8")
