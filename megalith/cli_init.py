"""`megalith init DATA`: a config written from a look at the data. Registered on the app in
megalith.cli; heavy imports stay inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from megalith.cli_args import FILE_HINT, fail
from megalith.errors import cannot_write


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
    private: Annotated[
        bool,
        typer.Option(
            "--private",
            help="Train with differential privacy (DP-SGD, train.privacy; docs/privacy.md).",
        ),
    ] = False,
    epsilon: Annotated[
        float | None,
        typer.Option("--epsilon", help="With --private: the privacy budget epsilon (default 8)."),
    ] = None,
) -> None:
    """Inspect the data and write a working config: predicting TARGET from a table, a
    language model of a text corpus, or (without --target) a recommender of an interactions
    table with user and item columns."""
    import os

    import pydantic

    from megalith.data.infer import infer_config, render_config
    from megalith.data.infer_text import infer_language_model, with_pretrained
    from megalith.data.sources import DataConfig, load_data

    def as_written(path: str) -> str:  # relative to the config file, which may live elsewhere
        if output is None or path.startswith("builtin:"):
            return path
        return os.path.relpath(Path(path).resolve(), output.resolve().parent)

    if epsilon is not None and not private:
        fail("--epsilon sets a private config's budget: add --private, or leave out --epsilon")
    corpus = _corpus_kind(data)
    if corpus is not None and target not in (None, "text"):
        fail(f"{data} is a text corpus: it has no column '{target}'; leave out --target")
    if corpus is None and target is None:
        from megalith.recommend.init import recommender_init_text

        interactions = recommender_init_text(
            data, name=name, source=as_written(data), written=as_written
        )
        if interactions is None:
            folder = Path(data).is_dir()  # an image folder reads as columns image and label
            fail(
                "give --target label: an image folder's class is its column 'label'"
                if folder
                else f"give --target COLUMN: the column of {data} to predict"
            )
        if private:  # refused as with_privacy refuses a recommender (it was silently ignored)
            fail(
                f"--private: {data} gives a recommender, which private training does not cover "
                "yet (docs/privacy.md, Models); leave out --private"
            )
        _write(interactions, output)
        return
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
        fail(f"{flag}: {problem['msg'].removeprefix('Value error, ')}")
    table = load_data(reading)
    source = as_written(data)
    if corpus is not None:
        inference = infer_language_model(table, source=source, folder=corpus == "folder", name=name)
    else:
        assert target is not None  # refused above
        inference = infer_config(table, target, source=source, name=name)
    if pretrained is not None:
        inference = with_pretrained(inference, as_written(str(pretrained)), pretrained)
    if private:
        from megalith.data.infer_private import expected_train_rows, with_privacy

        rows = expected_train_rows(table.frame, inference.config["data"]["split"])
        inference = with_privacy(inference, 8.0 if epsilon is None else epsilon, rows)
    for notice in inference.notices:
        typer.echo(f"note: {notice}", err=True)
    _write(render_config(inference), output)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise cannot_write(output, error, FILE_HINT) from error
    typer.echo(f"wrote {output}; train it with: megalith train {output}", err=True)


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
