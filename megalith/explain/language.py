"""Explaining a GPT language model: its attention maps over the first tokens of each document.

Token attributions for language models are not computed yet; what a GPT run gets is, per
document, the first ATTENTION_TOKENS tokens, the token the model predicts after each of them,
and per layer and head which earlier tokens each position attended to (attention.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from megalith.errors import DataError
from megalith.explain.attention import (
    AttentionMap,
    attention_modules,
    recorded_attention,
    token_label,
)
from megalith.models.gpt import GPT

if TYPE_CHECKING:
    import pandas as pd

    from megalith.explain import Explanations, Run

ATTENTION_TOKENS = 64
"""A document's first tokens shown in its attention maps (at most the model's context)."""


def explain_language_model(run: Run, frame: pd.DataFrame, origin: str) -> Explanations:
    """Attention maps of a GPT run for each document (row) of `frame`.

    Raises:
        DataError: the text column is missing, or no row holds any text.
    """
    from megalith.explain import Explanations

    model = run.model
    assert isinstance(model, GPT)  # check_supported said so
    encoder: Any = run.preprocessor.outputs[0]
    name = model.name
    if name not in frame.columns:
        raise DataError(f"{origin}: no column '{name}' holding the documents to explain")
    length = min(ATTENTION_TOKENS, model.context)
    ids_by_row = encoder.encode(frame[name])
    modules = attention_modules(model.blocks)
    rows: list[dict[str, Any]] = []
    maps: list[AttentionMap] = []
    model.eval()
    for label, ids in zip(frame.index, ids_by_row, strict=True):
        ids = ids[:length]
        if not ids:
            continue
        with recorded_attention(modules) as found, torch.no_grad():
            logits, _ = model.decode(torch.tensor([ids]))  # (1, T, V)
        tokens = [token_label(encoder.tokenizer, token) for token in ids]
        weights = torch.stack([calls[0][0] for calls in found])  # (layers, heads, T, T)
        maps.append(AttentionMap(_plain(label), name, tokens, weights.numpy()))
        predicted = logits[0].argmax(dim=-1).tolist()
        rows.append(
            {
                "row": _plain(label),
                "tokens": tokens,
                "predicted_next": [token_label(encoder.tokenizer, t) for t in predicted],
            }
        )
    if not rows:
        raise DataError(f"{origin}: the rows to explain hold no text in column '{name}'")
    summary = {
        "run": str(run.path),
        "data": origin,
        "rows": len(rows),
        "method": "attention",
        "method_name": (
            f"attention maps of the first {length} tokens of each document (token attributions "
            "for language models are not computed yet)"
        ),
        "output": name,
        "output_type": "text",
        "target": "the next token",
        "units": "attention weights (each position's weights sum to 1 over the tokens it sees)",
        "baselines": "none",
        "global_importance": {},
        "trust": {},
    }
    return Explanations(rows, summary, attention=maps)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
