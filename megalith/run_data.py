"""A run's data: its table split as the run split it, and rows turned into the tensors its model
reads (encoded rows; a language model's corpus windows; a seq2seq model's teacher forcing)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from megalith.config import Config, is_language_model
from megalith.data.csvfile import SEPARATORS, seeming_separator
from megalith.data.preprocess import Preprocessor
from megalith.data.sources import TABLE_SUFFIXES, Table, load_table
from megalith.data.split import split_table
from megalith.data.tensors import TensorTable
from megalith.errors import DataError
from megalith.models import ASRConfig, GPTConfig, PretrainedConfig, Seq2SeqConfig
from megalith.models.hybrid_asr import attention_inputs
from megalith.models.pretrained import language_model_context
from megalith.models.seq2seq import teacher_forcing


def split_data(cfg: Config, table: Table) -> dict[str, pd.DataFrame]:
    """The table's train / val / test frames by data.split and the seed, stratified by the
    first output when it is a category or binary (as training split it)."""
    first = cfg.outputs[0]
    stratify = first.name if first.type in ("category", "binary") else None
    if stratify is not None and stratify not in table.frame.columns:
        stratify = None  # the preprocessor reports the missing column with a better message
    return split_table(
        table.frame, cfg.data.split, seed=cfg.seed, stratify_by=stratify, origin=table.origin
    )


def transform_split(
    cfg: Config,
    preprocessor: Preprocessor,
    frame: pd.DataFrame,
    table: Table,
    split: str,
    console: Console | None = None,
) -> TensorTable:
    """Rows -> tensors: encoded rows, or for a language model, windows of its corpus."""
    where = f"{table.origin} ({split} split)" if split else table.origin
    if is_language_model(cfg):
        context = _context(cfg, preprocessor)
        return preprocessor.transform_corpus(frame, context=context, origin=where)
    tensors = preprocessor.transform(frame, base_dir=table.base_dir, origin=where)
    if isinstance(cfg.model, Seq2SeqConfig):
        tensors = teacher_forcing(tensors, cfg.outputs[0].name)
    if isinstance(cfg.model, ASRConfig) and cfg.model.ctc_weight < 1:  # the hybrid's decoder
        tensors = attention_inputs(tensors, cfg.outputs[0].name)
    if console is not None:
        for notice in preprocessor.dropped_notices():
            console.print(f"[yellow]note[/]: {split} split: {notice}")
    return tensors


def _context(cfg: Config, preprocessor: Preprocessor) -> int:
    """A language model's window length."""
    if isinstance(cfg.model, GPTConfig):
        return cfg.model.context
    assert isinstance(cfg.model, PretrainedConfig)
    tokenizer = getattr(preprocessor.outputs[0], "tokenizer", None)
    return language_model_context(cfg.model, getattr(tokenizer, "positions", None))


def _check_not_a_folder(config: Config, run_path: Path, path: Path, corpus: bool) -> None:
    """A folder is read as an image folder, which only a run with an image input can use: for
    any other run say so, rather than describe how an image folder is laid out.

    Raises:
        DataError: `path` is a folder and the run reads neither images nor a corpus.
    """
    if corpus or not path.is_dir() or any(f.type == "image" for f in config.inputs):
        return
    columns = ", ".join(f"'{f.name}'" for f in config.inputs)
    try:
        tables = sorted(p.name for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
    except OSError:
        tables = []
    held = f" (the folder holds {', '.join(tables[:3])})" if tables else ""
    raise DataError(
        f"{path} is a folder, but the run {run_path} reads a table with the column(s) "
        f"{columns}: give a table file ({', '.join(sorted(TABLE_SUFFIXES))}){held}"
    )


def read_run_table(
    config: Config, run_path: Path, path: str | Path, *, keep_text: bool = False
) -> Table:
    """A table of new rows read the way the run at `run_path` read its data: a CSV file with
    the separator and decimal mark in its config.yaml (detected when training recorded none; a
    .tsv file is tab-separated); a language model's corpus as text.

    Raises:
        DataError: the file cannot be read, or seems separated otherwise than the run's data.
    """
    corpus = is_language_model(config)
    _check_not_a_folder(config, run_path, Path(path), corpus)
    data = config.data
    tsv = Path(path).suffix.lower() == ".tsv"  # the name itself says how it is separated
    table = load_table(
        str(path),
        format="text" if corpus else "auto",
        delimiter="\t" if tsv else data.delimiter,
        decimal=data.decimal,
        keep_text=keep_text,
    )
    columns = [str(column) for column in table.frame.columns]
    seeming = seeming_separator(columns)
    recorded = data.delimiter != "auto" and not tsv
    if recorded and table.dialect is not None and seeming not in (None, data.delimiter):
        used = table.dialect.describe().split()[0]
        raise DataError(
            f"{table.origin}: read {used} like this run's data (data.delimiter in "
            f"{run_path / 'config.yaml'}), the header is one column ({columns[0][:60]!r}), "
            f"but the file seems {SEPARATORS[str(seeming)]}-separated: save it with "
            f"{table.dialect.delimiter!r} between columns, or change data.delimiter there"
        )
    return table
