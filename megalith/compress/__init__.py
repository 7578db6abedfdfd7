"""`megalith compress RUN`: shrink a trained run step by step (distill -> prune -> int8), each
step measured (size, MACs, latency, test metrics) and gated (accuracy drop, speed).

    import megalith as mg
    result = mg.compress("runs/digits-cnn", steps=["quantize"], output_dir="digits-small")
    result.table          # one row per model: the measurements and the verdicts
    result.best           # the last model taken forward (a run directory or a bundle)

See docs/compress.md; the folder's layout is in megalith.compress.chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megalith.errors import MegalithError, RunError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from megalith.compress.chain import StepFunction
    from megalith.run import Run

# megalith/__init__.py imports this package (so that `mg.compress` is the function, not this
# package): its modules load inside the functions, keeping `import megalith` light
__all__ = ["Compression", "compress", "quantize_run"]
RESULT_FILE = "compression.json"
PAGE_FILE = "compression.html"


def quantize_run(run: Run, output_dir: Path, **options: Any) -> Path:
    """An int8 bundle of `run` in `output_dir`; see megalith.compress.quantize.quantize_run."""
    from megalith.compress.quantize import quantize_run as quantize

    return quantize(run, output_dir, **options)


@dataclass(frozen=True)
class Compression:
    """A finished compression: its folder and what compression.json holds."""

    path: Path
    summary: dict[str, Any]

    @property
    def models(self) -> list[dict[str, Any]]:
        """Each model's measurements and verdict: the original first, then each step's."""
        return list(self.summary["models"])

    @property
    def best(self) -> Path:
        """The last model taken forward: a run directory, a bundle, or the original run."""
        name = self.summary["best"]
        (model,) = [m for m in self.models if m["name"] == name]
        return Path(model["path"]) if model["name"] == "original" else self.path / model["path"]

    @property
    def page(self) -> Path:
        return self.path / PAGE_FILE

    @property
    def table(self) -> pd.DataFrame:
        """One row per model: parameters, size in MB of its timed ONNX graph (onnx_mb, like
        for like) and of its own weights file (size_mb), MACs, latency (ms) at batch 1 and 32,
        speed-up against the original's fp32 bundle, the watched metric, agreement, verdict."""
        import pandas as pd

        metric = self.summary["watched"]["metric"]
        base = self.models[0]["latency_ms"]
        rows = []
        for model in self.models:
            latency, verdict = model["latency_ms"], model["verdict"]
            rows.append(
                {
                    "model": model["name"],
                    "kind": model["kind"],
                    "scheme": model["scheme"],
                    "parameters": model["parameters"],
                    "onnx_mb": model["bundle_mb"],
                    "size_mb": model["size_mb"],
                    "macs": model["macs"],
                    "ms_batch1": latency["1"],
                    "ms_batch32": latency["32"],
                    "speedup_batch1": base["1"] / latency["1"],
                    "speedup_batch32": base["32"] / latency["32"],
                    metric: model["metrics"].get(metric),
                    "agreement": model["agreement"],
                    "accepted": verdict.get("accepted"),
                    "why": "; ".join(verdict.get("reasons", [])),
                }
            )
        return pd.DataFrame(rows).set_index("model")

    @classmethod
    def load(cls, path: str | Path) -> Compression:
        """A compression folder written earlier.

        Raises:
            RunError: the folder holds no readable compression.json.
        """
        file = Path(path) / RESULT_FILE
        try:
            return cls(Path(path), json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise RunError(f"{file}: cannot read the compression ({error})") from None


def compress(
    run: Run | str | Path,
    steps: Sequence[str | StepFunction] | None = None,
    output_dir: str | Path | None = None,
    *,
    config: str | Path | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    **settings: Any,
) -> Compression:
    """Compress a run: apply `steps` in order, each to the last accepted model, measuring and
    gating each; write OUT (default RUN/compress) with a folder per step, compression.json
    and compression.html.

    Args:
        run: a Run or its directory.
        steps: names in the order distill, prune, quantize (a subset), and/or callables
            (run, folder, console) -> the Run or bundle Path written in folder.
        config: a YAML file with a `compress:` block, or the block as a mapping; `steps` and
            keyword `settings` (CompressSettings fields: prune, max_metric_drop, force, ...)
            override it.

    Raises:
        ConfigError: an unknown setting, a bad value (with its key) or steps out of order.
        RunError: `run` is not a run directory (a bundle, say), its model cannot be
            compressed, OUT holds other files, or a step failed; OUT is then left as it was.
    """
    from rich.console import Console

    from megalith.compress.chain import resolve_steps, run_chain
    from megalith.compress.settings import read_settings_file, validate_settings

    _check_installed()
    data = dict(config) if isinstance(config, Mapping) else {}
    if isinstance(config, (str, Path)):
        data = read_settings_file(Path(config))
    data.update({key: value for key, value in settings.items() if value is not None})
    if steps is not None:
        data["steps"] = [step for step in steps if isinstance(step, str)] or ["quantize"]
    origin = f"{config}: compress" if isinstance(config, (str, Path)) else "compress"
    checked = validate_settings(data, origin)
    chosen: Sequence[str | StepFunction] = list(steps) if steps is not None else checked.steps
    loaded = _load_run(run)
    target = Path(output_dir) if output_dir is not None else loaded.path / "compress"
    bundles: dict[Path, Path] = {}
    resolved = resolve_steps(chosen, checked, bundles)
    _check_compressible(loaded)
    summary = run_chain(
        loaded,
        resolved,
        checked,
        target,
        bundles=bundles,
        overwrite=overwrite,
        console=console or Console(stderr=True),
    )
    return Compression(target, summary)


def _load_run(run: Run | str | Path) -> Run:
    """The Run, refusing a bundle with a message that says what to give instead."""
    from megalith.run import Run
    from megalith.runtime import is_bundle

    if isinstance(run, Run):
        return run
    if is_bundle(run):
        raise RunError(
            f"{run} is an inference bundle; compress takes the run directory it was exported "
            "from (`megalith compress RUN`), since distill and prune retrain the model"
        )
    return Run.load(run)


def _check_compressible(run: Run) -> None:
    """The chain times every model as an ONNX bundle that predicts columns, so it takes the
    runs quantize takes; a language model or seq2seq run is told how it can still shrink.

    Raises:
        RunError: naming the family and what to do instead.
    """
    from megalith.compress.quantize import check_quantizable
    from megalith.config import is_language_model
    from megalith.models import Seq2SeqConfig

    if is_language_model(run.config) or isinstance(run.config.model, Seq2SeqConfig):
        family = "a language model" if is_language_model(run.config) else "a seq2seq model"
        raise RunError(
            f"{run.path} is {family}: megalith compress measures each step as an ONNX bundle "
            "that predicts columns, which this run is not; to shrink it, train a smaller "
            f"student from it with `megalith train student.yaml --teacher {run.path}`"
        )
    check_quantizable(run)


def _check_installed() -> None:
    """The `compress` extra's modules, named with the pip command when one is missing."""
    import importlib.util

    for module in ("onnx", "onnxscript", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            raise MegalithError(
                f"compress needs {module}, which is not installed here: "
                'pip install "megalith[compress]"'
            )
