"""Explaining a GPT language model over the first tokens of each document (row): which of them
made it predict the next token, and what each position attended to.

Per document, the first ATTENTION_TOKENS tokens are run through the model: the token it predicts
after each of them; Integrated Gradients (methods.py, Captum; completeness checked and the steps
raised as for other runs) of the logit of the token it predicts after the last one, attributed
to the token embeddings (baseline: zeros, as for text inputs) and summed per token; and per
layer and head which earlier tokens each position attended to (attention.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from megalith.data.specs import InputSpec
from megalith.errors import DataError, RunError
from megalith.explain.attention import (
    AttentionMap,
    attention_modules,
    recorded_attention,
    token_label,
)
from megalith.explain.methods import attribute
from megalith.explain.sanity import (
    RANDOMISATION_ROWS,
    flattened,
    randomisation_summary,
    randomised_copy,
    rank_correlations,
    valid_elements,
)
from megalith.explain.space import InputSpace
from megalith.explain.timing import PartTimes
from megalith.explain.trust import completeness_summary, deletion_curves, deletion_summary
from megalith.models.gpt import GPT

if TYPE_CHECKING:
    import pandas as pd

    from megalith.explain import Explanations, Run

ATTENTION_TOKENS = 64
"""A document's first tokens shown in its attention maps (at most the model's context)."""


class _NextToken(nn.Module):
    """A GPT as a function of its token embeddings (B, T, D): the logits (B, V) of the token
    after the last position."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        logits, _ = self.model.from_embeddings(x)
        return logits[:, -1, :]


def explain_language_model(
    run: Run, frame: pd.DataFrame, origin: str, method: str = "ig", steps: int = 50
) -> Explanations:
    """Token attributions and attention maps of a GPT run for each document (row) of `frame`.

    Raises:
        RunError: a method other than ig.
        DataError: the text column is missing, or no row holds any text.
    """
    from megalith.explain import Explanations

    if method != "ig":
        raise RunError(f"--method {method}: a gpt run is explained by ig only; leave it out")

    model = run.model
    assert isinstance(model, GPT)  # check_supported said so
    encoder: Any = run.preprocessor.outputs[0]
    name = model.name
    if name not in frame.columns:
        raise DataError(f"{origin}: no column '{name}' holding the documents to explain")
    length = min(ATTENTION_TOKENS, model.context)
    times = PartTimes()
    with times.part("encode"):
        ids_by_row = encoder.encode(frame[name])
    modules = attention_modules(model.blocks)
    rows: list[dict[str, Any]] = []
    maps: list[AttentionMap] = []
    gaps: list[float] = []
    step_counts: list[int] = []
    areas: list[tuple[float, float]] = []
    correlations: list[float] = []
    model.eval()
    for label, ids in zip(frame.index, ids_by_row, strict=True):
        ids = ids[:length]
        if not ids:
            continue
        with times.part("attention"), recorded_attention(modules) as found, torch.no_grad():
            logits, _ = model.decode(torch.tensor([ids]))  # (1, T, V): the maps and prediction
        tokens = [token_label(encoder.tokenizer, token) for token in ids]
        weights = torch.stack([calls[0][0] for calls in found])  # (layers, heads, T, T)
        maps.append(AttentionMap(_plain(label), name, tokens, weights.numpy()))
        predicted = logits[0].argmax(dim=-1).tolist()
        checked = _next_token_attributions(
            model, ids, predicted[-1], steps, randomise=len(rows) < RANDOMISATION_ROWS,
            times=times,
        )  # fmt: skip
        values, used, gap = checked["values"], checked["steps"], checked["gap"]
        gaps.append(gap)
        step_counts.append(used)
        areas.append(checked["deletion"])
        correlations.append(checked["randomisation"])
        rows.append(
            {
                "row": _plain(label),
                "tokens": tokens,
                "predicted_next": [token_label(encoder.tokenizer, t) for t in predicted],
                "explained": {"next_token": token_label(encoder.tokenizer, predicted[-1])},
                "token_attributions": [[t, v] for t, v in zip(tokens, values, strict=True)],
                "integrated_gradients": {"steps": used, "completeness_gap": gap},
                "deletion": {
                    "area_attributed": checked["deletion"][0],
                    "area_random": checked["deletion"][1],
                },
            }
        )
    if not rows:
        raise DataError(f"{origin}: the rows to explain hold no text in column '{name}'")
    deleted = torch.tensor(areas, dtype=torch.float64)  # (rows, 2)
    summary = {
        "run": str(run.path),
        "data": origin,
        "rows": len(rows),
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
        "global_importance": {},
        "trust": {
            "completeness": completeness_summary(torch.tensor(gaps), torch.tensor(step_counts)),
            "deletion": deletion_summary(deleted[:, 0], deleted[:, 1]),
            "randomisation": randomisation_summary(np.array(correlations, dtype=float)),
        },
        "seconds_by_part": times.as_json(),
    }
    return Explanations(rows, summary, attention=maps)


def _next_token_attributions(
    model: GPT, ids: list[int], target: int, steps: int, *, randomise: bool, times: PartTimes
) -> dict[str, Any]:
    """Each token's attribution (its embedding's, summed) to the logit of `target` after the
    last token ("values"); the steps Integrated Gradients took and its completeness gap; the
    deletion check's areas (tokens' embeddings put to 0, most attributed first, against random
    orders; trust.py); and, with `randomise`, the model-randomisation rank correlation
    (sanity.py; NaN without)."""
    with torch.no_grad():
        embeddings = model.embedding(torch.tensor([ids]))  # (1, T, D)
    space = InputSpace(
        InputSpec(model.name, "text"),
        embeddings,
        torch.zeros_like(embeddings),
        None,
        torch.arange(len(ids)).view(1, -1, 1),
        torch.ones(1, len(ids), dtype=torch.bool),
    )
    forward, chosen = _NextToken(model).eval(), torch.tensor([target])
    size = max(1, 4096 // len(ids))
    with times.part("ig"):
        found = attribute("ig", forward, [space], chosen, steps=steps, internal_batch_size=size)
    assert found.steps is not None and found.gap is not None
    values = found.values[0].sum(dim=-1)  # (1, T)
    with times.part("deletion"):
        attributed, random = deletion_curves(
            forward, [space], chosen, values.double(), space.valid, internal_batch_size=size
        )
    correlation = float("nan")
    if randomise:
        with times.part("randomisation"):
            fresh = _NextToken(randomised_copy(model)).eval()  # type: ignore[arg-type]
            again = attribute(
                "ig", fresh, [space], chosen, steps=steps, internal_batch_size=size,
                raise_steps=False,
            )  # fmt: skip
            valid = valid_elements([space], "ig")
            correlation = float(
                rank_correlations(flattened(found.values), flattened(again.values), valid)[0]
            )
    return {
        "values": values[0].tolist(),
        "steps": int(found.steps[0]),
        "gap": float(found.gap[0]),
        "deletion": (float(attributed[0]), float(random[0])),
        "randomisation": correlation,
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
