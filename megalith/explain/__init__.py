"""`megalith explain RUN`: which inputs made the model predict what it did, by how much.

    explanations = explain_run(Run.load("runs/tiny"), rows=50, method="ig")
    write_explanations(explanations, "runs/tiny/explain")

Captum computes every attribution (methods.py) in the space each input is attributed in
(space.py: embeddings for ids, encoded values for the rest, each with its baseline); mapping.py
turns them into one value per column, word, pixel or step, and trust.py checks them. Takes MLP,
CNN and ResNet runs (FeatureModel) with category, binary or number outputs; attention.py records
the attention maps of Transformer-encoded inputs; GPT and pretrained language model runs
(language.py) and seq2seq runs (translation.py) get token attributions over their own tokens
and their attention maps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from megalith.errors import DataError, RunError, did_you_mean
from megalith.explain.attention import AttentionMap
from megalith.explain.output import write_explanations
from megalith.explain.permutation import permutation_comparison
from megalith.models.blocks import FeatureModel
from megalith.models.pretrained import PretrainedModel
from megalith.models.seq2seq import Seq2Seq

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from megalith.config import Config
    from megalith.data.preprocess import Preprocessor
    from megalith.data.sources import Table

__all__ = ["AttentionMap", "Explanations", "ImageMap", "explain_run", "write_explanations"]

DEFAULT_ROWS = 50
ROWS_PER_PASS = 256
"""Rows attributed together; Captum's internal batch size bounds the memory within a pass."""


class Run(Protocol):
    """What explain reads of a run: megalith.run.Run (not imported: Run.explain imports this)."""

    path: Path
    config: Config
    preprocessor: Preprocessor
    model: nn.Module

    def data_splits(self) -> tuple[Table, dict[str, pd.DataFrame]]: ...

    def read_table(self, path: str | Path, *, keep_text: bool = False) -> Table: ...


@dataclass
class ImageMap:
    """One image input of one row: its pixels (C, H, W) uint8 and its attribution map (H, W)."""

    row: Any
    column: str
    pixels: np.ndarray
    values: np.ndarray


@dataclass
class Explanations:
    """What explain_run found: one JSON object per row (explanations.jsonl), the summary
    (summary.json: global importance, trust figures), the image maps and the attention maps."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    images: list[ImageMap] = field(default_factory=list)
    attention: list[AttentionMap] = field(default_factory=list)

    @property
    def importance(self) -> dict[str, float]:
        """Mean |attribution| per input column over the explained rows, largest first."""
        importance: dict[str, float] = self.summary["global_importance"]
        return importance


def explain_run(
    run: Run,
    data: pd.DataFrame | str | Path | None = None,
    *,
    rows: int | None = None,
    row_ids: list[int] | None = None,
    method: str = "ig",
    target: str | None = None,
    output_name: str | None = None,
    steps: int = 50,
    internal_batch_size: int | None = None,
    attention: bool = True,
    base_dir: str | Path | None = None,
    ready: Callable[[], None] | None = None,
) -> Explanations:
    """Explain the run's prediction for `rows` rows of `data` (default: the first 50 of the
    run's test split), or the rows at positions `row_ids` (0-based).

    Args:
        method: ig, saliency, occlusion or shap (methods.py).
        target: the class to explain (by name); default each row's predicted class. A number
            output explains its predicted value.
        output_name: the output to explain when the run has several (default the first).
        steps: Integrated Gradients' starting step count (raised per row, up to 8x, until its
            completeness gap is at most 5%).
        internal_batch_size: the most (row, step) pairs in one forward pass: bounds memory
            (default: about 2 million attributed numbers per pass, 64 to 4,096 pairs).
        attention: record the attention maps of Transformer-encoded inputs (a GPT or seq2seq
            run is explained with its attention maps, whatever this says).
        ready: called once the options and rows are checked, before the work (the CLI checks
            its --output folder there, so that a mistake in the options is reported first and
            one in the folder costs no waiting).

    Raises:
        RunError: the method, output or target is unknown, or the family is not supported yet.
        DataError: the data cannot be read, or a row id is out of range.
    """
    from megalith.explain.explainer import Explainer
    from megalith.explain.methods import METHODS
    from megalith.models.gpt import GPT

    if method not in METHODS:
        raise RunError(
            f"--method {method}: unknown{did_you_mean(method, METHODS)}; choose one of "
            f"{', '.join(METHODS)}"
        )
    if steps < 1 or (internal_batch_size is not None and internal_batch_size < 1):
        raise RunError("--steps and --internal-batch-size must be at least 1")
    check_supported(run)
    started = time.perf_counter()
    if rows is not None and row_ids is not None:  # before the data is read
        raise RunError("--rows and --row-ids: give one of them, not both")
    if rows is not None and rows < 1:
        raise RunError(f"--rows {rows}: explain at least one row")
    if isinstance(run.model, GPT | Seq2Seq) or _language_model(run.model):  # their own tokens
        from megalith.explain.language import explain_language_model
        from megalith.explain.translation import explain_seq2seq

        _check_text_options(run, method, target, output_name)
        source, _, origin = _source(run, data, base_dir)
        selected = _selected(source, origin, rows, row_ids)
        if ready is not None:
            ready()
        if isinstance(run.model, Seq2Seq):
            explanations = explain_seq2seq(run, selected, origin, steps, internal_batch_size)
        else:
            explanations = explain_language_model(
                run, selected, origin, method, steps, internal_batch_size
            )
        explanations.summary["seconds"] = round(time.perf_counter() - started, 3)
        return explanations
    explainer = Explainer(run, method, output_name, target, steps, internal_batch_size)
    explainer.attention = attention
    source, folder, origin = _source(run, data, base_dir)
    frame = _selected(source, origin, rows, row_ids)
    if ready is not None:
        ready()
    explanations = explainer.explain(frame, folder, origin, ROWS_PER_PASS)
    with explainer.times.part("permutation"):
        compared = permutation_comparison(
            run, source, folder, origin, explainer.output, explanations.importance
        )
    if compared is not None:
        explanations.summary["trust"]["permutation"] = compared
    explanations.summary["seconds_by_part"] = explainer.times.as_json()
    explanations.summary["seconds"] = round(time.perf_counter() - started, 3)
    return explanations


def _check_text_options(run: Run, method: str, target: str | None, output_name: str | None) -> None:
    """GPT, pretrained language model and seq2seq runs take no --target / --output-name, and
    seq2seq no --method: say so rather than ignore them.

    Raises:
        RunError: naming the option and what the run is explained by instead.
    """
    family = "a seq2seq run" if isinstance(run.model, Seq2Seq) else "a gpt run"
    if _language_model(run.model):
        family = "a pretrained language model"
    given = [
        name for name, value in (("--target", target), ("--output-name", output_name)) if value
    ]
    if given:
        raise RunError(
            f"{' and '.join(given)}: {family} has no output columns or classes to choose; "
            "explain shows which tokens led to each predicted token"
        )
    if isinstance(run.model, Seq2Seq) and method != "ig":
        raise RunError(
            f"--method {method}: {family} is explained by ig (each written token's source "
            "words) and its attention maps; leave --method out"
        )


def check_supported(run: Run) -> None:
    """Raise RunError in one line when explain does not take the run's model family yet."""
    from megalith.models.gpt import GPT

    if isinstance(run.model, FeatureModel):
        audio = [spec.name for spec in run.preprocessor.input_specs if spec.type == "audio"]
        if audio:
            raise RunError(
                f"{run.path}: input '{audio[0]}' is audio, which explain does not attribute yet; "
                "explain takes tables, images, text and sequences"
            )
        return
    if isinstance(run.model, GPT | Seq2Seq | PretrainedModel):
        return
    raise RunError(
        f"{run.path}: explaining a model.arch {run.config.model.arch} run is not supported yet; "
        "explain takes mlp, cnn, resnet and pretrained classifier runs (tables, images, text, "
        "sequences) and the gpt, pretrained language model and seq2seq runs' tokens and "
        "attention maps"
    )


def _language_model(model: nn.Module) -> bool:
    """A pretrained (Hugging Face) causal language model, explained as a GPT run is."""
    return isinstance(model, PretrainedModel) and model.task == "language_model"


def _source(
    run: Run, data: pd.DataFrame | str | Path | None, base_dir: str | Path | None
) -> tuple[pd.DataFrame, Path | None, str]:
    """The rows explained ones are drawn from, the folder image paths resolve against, and
    where they came from (the run's test split by default)."""
    import pandas as pd

    if data is None:
        table, splits = run.data_splits()
        split = next((s for s in ("test", "val", "train") if len(splits.get(s, ())) > 0), "test")
        return splits[split], table.base_dir, f"{table.origin} ({split} split)"
    if isinstance(data, pd.DataFrame):
        return data, Path(base_dir) if base_dir is not None else Path.cwd(), "data frame"
    given = Path(data).expanduser()
    if not str(data).startswith("builtin:") and not os.path.lexists(given):
        raise DataError(
            f"--data {data}: no such file or folder (looked for {given.absolute()}); give the "
            "path of a table or image folder, relative to the current folder"
        )
    table = run.read_table(data)
    return table.frame, table.base_dir, table.origin


def _selected(
    frame: pd.DataFrame, origin: str, rows: int | None, row_ids: list[int] | None
) -> pd.DataFrame:
    """The rows to explain: those at `row_ids`, or the first `rows` (default 50)."""
    if row_ids is not None:
        bad = [i for i in row_ids if not 0 <= i < len(frame)]
        if bad:
            raise DataError(
                f"{origin}: --row-ids {bad[0]} is out of range; it has rows 0 to {len(frame) - 1}"
            )
        return frame.iloc[row_ids]
    if len(frame) == 0:
        raise DataError(f"{origin}: no rows to explain")
    return frame.iloc[: rows or DEFAULT_ROWS]
