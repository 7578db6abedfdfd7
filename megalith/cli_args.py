"""What the command-line modules share: argument types and the one-line failure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from megalith.errors import MegalithError

FILE_HINT = "check that its folder exists and is writable, and that the disk has space"

RunArg = Annotated[Path, typer.Argument(help="A run directory written by `megalith train`.")]
RunOrBundleArg = Annotated[
    Path,
    typer.Argument(help="A run directory (`megalith train`) or an inference bundle (`export`)."),
]


def fail(message: str) -> NoReturn:
    """Stop the command with `message` as its one-line error (exit code 2)."""
    raise MegalithError(message)
