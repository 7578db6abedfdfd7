"""Request and response models made from a run's inputs, so /docs shows the real columns and a
wrong or missing field gets a 422 that names it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

_VALUE_TYPES: dict[str, Any] = {
    "number": float | None,
    "binary": bool | int | float | str | None,
    "category": str | int | float | bool | None,
    "text": str | None,
    "image": str,
    "audio": str,
    "sequence": list[float] | str | None,
    "set": list[str] | str | None,
}
_DESCRIPTIONS = {
    "number": "a number (null: filled as in training)",
    "binary": "one of the two values the column held in training",
    "category": "a category (unseen values count as unknown)",
    "text": "text",
    "image": "the image file's bytes, base64-encoded (PNG, JPEG, ...)",
    "audio": "the sound file's bytes, base64-encoded (WAV, FLAC, OGG, ...)",
    "sequence": "a number sequence: a list, or numbers separated by spaces or commas",
    "set": "a list of names, or names separated by spaces, '|', ',' or ';' (unseen ones count "
    "as other)",
}


def row_model(inputs: Sequence[tuple[str, str]], *, image_paths: bool = False) -> type[BaseModel]:
    """One row: a required field per input column (name, type); unknown fields are refused.

    Args:
        inputs: (column name, input type) pairs, in the run's order.
        image_paths: image fields may also hold a path under the server's --allow-paths.
    """
    fields: dict[str, Any] = {}
    for index, (name, kind) in enumerate(inputs):
        described = _DESCRIPTIONS.get(kind, kind)
        if kind == "image" and image_paths:
            described += ", or a file path under the allowed folder"
        fields[f"c{index}"] = (  # the column itself is the alias: any name works
            _VALUE_TYPES.get(kind, Any),
            Field(..., alias=name, description=f"{kind}: {described}"),
        )
    return create_model(
        "Row",
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        **fields,
    )


def predict_request(row: type[BaseModel], max_rows: int) -> type[BaseModel]:
    """{"rows": [row, ...]} with 1..max_rows rows."""
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[row], Field(..., min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )


class GenerateRequest(BaseModel):
    """POST /generate: a prompt and sampling settings (see `megalith generate`)."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field("", max_length=20_000)
    max_new_tokens: int = Field(100, ge=1, le=2048)
    temperature: float = Field(0.8, ge=0.0, le=10.0)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int = 0
