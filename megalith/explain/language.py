"""Explaining a causal language model (a GPT run or a pretrained Hugging Face one) over the first
tokens of each document (row): which of them made it predict the next token, and what each
position attended to.

Per document, the first ATTENTION_TOKENS tokens are run through the model (causal_lm.py gives
both families one interface): the token it predicts after each of them; Integrated Gradients
(methods.py, Captum; completeness checked and the steps raised as for other runs) of the logit
of the token it predicts after the last one, attributed to the token embeddings (baseline:
zeros, as for text inputs) and summed per token, the tokens then merged into words as for text
inputs (mapping.py); and per layer and head which earlier tokens each position attended to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from megalith.data.specs import InputSpec
from megalith.errors import DataError, RunError
from megalith.explain.attention import AttentionMap
from megalith.explain.causal_lm import NextToken, next_token_model, token_text
from megalith.explain.mapping import text_words, word_values
from megalith.explain.methods import attribute
from megalith.explain.sanity import (
    RANDOMISATION_ROWS,
    flattened,
    randomisation_summary,
    rank_correlations,
    valid_elements,
)
from megalith.explain.space import InputSpace
from megalith.explain.timing import PartTimes
from megalith.explain.trust import completeness_summary, deletion_curves, deletion_summary

if TYPE_CHECKING:
    import pandas as pd

    from megalith.explain import Explanations, Run

ATTENTION_TOKENS = 64
"""A document's first tokens shown in its attention maps (at most the model's context)."""


def explain_language_model(
    run: Run,
    frame: pd.DataFrame,
    origin: str,
    method: str = "ig",
    steps: int = 50,
    internal_batch_size: int | None = None,
) -> Explanations:
    """Token attributions and attention maps of a GPT or pretrained language model run for
    each document (row) of `frame`; `internal_batch_size` is the most integration steps in one
    pass (default 4,096 tokens' worth: 4,096 / the document's tokens), and the largest a
    document used is recorded in the summary.

    Raises:
        RunError: a method other than ig.
        DataError: the text column is missing, or no row holds any text.
    """
    from megalith.explain import Explanations

    if method != "ig":
        family = "a gpt run" if run.config.model.arch == "gpt" else "a pretrained language model"
        raise RunError(f"--method {method}: {family} is explained by ig only; leave it out")
    model: Any = run.model
    forward = next_token_model(model)
    encoder: Any = run.preprocessor.outputs[0]
    name = model.name
    if name not in frame.columns:
        raise DataError(f"{origin}: no column '{name}' holding the documents to explain")
    length = min(ATTENTION_TOKENS, model.context)
    times = PartTimes()
    with times.part("encode"):
        ids_by_row = encoder.encode(frame[name])
    rows: list[dict[str, Any]] = []
    maps: list[AttentionMap] = []
    figures: list[dict[str, Any]] = []
    model.eval()
    randomised: list[NextToken] = []  # the re-initialised copy, made once for every row
    files = frame["file"].tolist() if "file" in frame.columns else [None] * len(frame)
    for label, text, ids, file in zip(frame.index, frame[name], ids_by_row, files, strict=True):
        cut = max(0, len(ids) - length)  # tokens past the first `length`: not read
        ids = ids[:length]
        if not ids:
            continue
        with times.part("attention"):
            logits, weights = forward.read(ids)  # (T, V), (layers, heads, T, T): maps, prediction
        tokens = [token_text(encoder.tokenizer, token) for token in ids]
        maps.append(AttentionMap(_plain(label), name, tokens, weights.numpy()))
        predicted = logits.argmax(dim=-1).tolist()
        checked = _next_token_attributions(
            forward, name, ids, predicted[-1], steps,
            randomised=randomised if len(rows) < RANDOMISATION_ROWS else None, times=times,
            internal_batch_size=internal_batch_size,
        )  # fmt: skip
        figures.append(checked)
        cell = text if isinstance(text, str) else ""
        row = _row(_plain(label), encoder.tokenizer, cell, ids, predicted, checked)
        if isinstance(file, str):  # a prompt folder's file: its rows are numbered without
            row = {"row": row.pop("row"), "file": file, **row}  # the empty files
        if cut:
            row["tokens_cut"] = cut
        rows.append(row)
    if not rows:
        raise DataError(f"{origin}: the rows to explain hold no text in column '{name}'")
    summary = _summary(run, origin, name, length, steps, figures)
    summary["seconds_by_part"] = times.as_json()
    return Explanations(rows, summary, attention=maps)


def _row(
    label: Any,
    tokenizer: Any,
    text: str,
    ids: list[int],
    predicted: list[int],
    checked: dict[str, Any],
) -> dict[str, Any]:
    """One document's object in explanations.jsonl: its tokens, the token predicted after each,
    the explained one's attributions by token and by word (pieces merged), and its checks."""
    tokens = [token_text(tokenizer, token) for token in ids]
    values = checked["values"]
    words = text_words(tokenizer, text, len(ids))
    return {
        "row": label,
        "tokens": tokens,
        "predicted_next": [token_text(tokenizer, t) for t in predicted],
        "explained": {"next_token": token_text(tokenizer, predicted[-1])},
        "token_attributions": [[t, v] for t, v in zip(tokens, values, strict=True)],
        "word_attributions": [[w, v] for w, v in word_values(words, np.array(values))],
        "integrated_gradients": {"steps": checked["steps"], "completeness_gap": checked["gap"]},
        "deletion": {
            "area_attributed": checked["deletion"][0],
            "area_random": checked["deletion"][1],
        },
    }


def _summary(
    run: Run, origin: str, name: str, length: int, steps: int, figures: list[dict[str, Any]]
) -> dict[str, Any]:
    """summary.json of a language model's explanation: what was explained and the trust figures."""
    deleted = torch.tensor([f["deletion"] for f in figures], dtype=torch.float64)  # (rows, 2)
    gaps = torch.tensor([f["gap"] for f in figures])
    used = torch.tensor([f["steps"] for f in figures])
    correlations = np.array([f["randomisation"] for f in figures], dtype=float)
    return {
        "run": str(run.path),
        "data": origin,
        "rows": len(figures),
        "method": "ig",
        "method_name": (
            f"Integrated Gradients (Sundararajan et al. 2017) of the next token after the first "
            f"{length} tokens of each document, and the attention maps of those tokens"
        ),
        "output": name,
        "output_type": "text",
        "target": "the token predicted after the last one",
        "units": "logits (attention: weights, each position's summing to 1)",
        "baselines": "token embeddings 0 (the padding embedding)",
        "steps": steps,
        "internal_batch_size": max(f["internal_batch_size"] for f in figures),
        "global_importance": {},
        "trust": {
            "completeness": completeness_summary(gaps, used),
            "deletion": deletion_summary(deleted[:, 0], deleted[:, 1]),
            "randomisation": randomisation_summary(correlations),
        },
    }


def _next_token_attributions(
    forward: NextToken,
    name: str,
    ids: list[int],
    target: int,
    steps: int,
    *,
    randomised: list[NextToken] | None,
    times: PartTimes,
    internal_batch_size: int | None = None,
) -> dict[str, Any]:
    """Each token's attribution (its embedding's, summed) to the logit of `target` after the
    last token ("values"); the steps Integrated Gradients took and its completeness gap; the
    deletion check's areas (tokens' embeddings put to 0, most attributed first, against random
    orders; trust.py); and, with `randomised` (a list holding the re-initialised copy of the
    model once it is made, or empty: it is made here and kept there for the next rows), the
    model-randomisation rank correlation (sanity.py; NaN without); the steps per forward pass
    ("internal_batch_size")."""
    embeddings = forward.embed(ids)  # (1, T, D)
    space = InputSpace(
        InputSpec(name, "text"),
        embeddings,
        torch.zeros_like(embeddings),
        None,
        torch.arange(len(ids)).view(1, -1, 1),
        torch.ones(1, len(ids), dtype=torch.bool),
    )
    chosen = torch.tensor([target])
    size = internal_batch_size or max(1, 4096 // len(ids))
    with times.part("ig"):
        found = attribute("ig", forward, [space], chosen, steps=steps, internal_batch_size=size)
    assert found.steps is not None and found.gap is not None
    values = found.values[0].sum(dim=-1)  # (1, T)
    with times.part("deletion"):
        attributed, random = deletion_curves(
            forward, [space], chosen, values.double(), space.valid, internal_batch_size=size
        )
    correlation = float("nan")
    if randomised is not None:
        with times.part("randomisation"):
            if not randomised:
                randomised.append(forward.randomised())
            correlation = _randomised_correlation(randomised[0], space, chosen, found, steps, size)
    return {
        "values": values[0].tolist(),
        "steps": int(found.steps[0]),
        "gap": float(found.gap[0]),
        "deletion": (float(attributed[0]), float(random[0])),
        "randomisation": correlation,
        "internal_batch_size": size,
    }


def _randomised_correlation(
    fresh: NextToken, space: InputSpace, chosen: torch.Tensor, found: Any, steps: int, size: int
) -> float:
    """The rank correlation of the attributions with those of `fresh`, the weight-randomised
    copy of the model (the model-randomisation test, Adebayo et al. 2018; sanity.py)."""
    again = attribute(
        "ig",
        fresh,
        [space],
        chosen,
        steps=steps,
        internal_batch_size=size,
        raise_steps=False,
    )
    valid = valid_elements([space], "ig")
    return float(rank_correlations(flattened(found.values), flattened(again.values), valid)[0])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
