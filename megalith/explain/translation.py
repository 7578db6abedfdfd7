"""Explaining a seq2seq model: per row, what it writes, which source words made it write each
token (Integrated Gradients, seq2seq_tokens.py), and per layer and head which source tokens each
written token looked at (cross-attention), with the encoder's self-attention.

The output is written by the run's own beam search; the decoder then reads it back once (BOS
first, teacher forcing) with the attention hooks on, so that each written token's row of the
cross-attention map is the one the decoder used to predict that token. The same teacher-forced
pass gives the log-probability of each written token that is attributed to the source tokens;
sub-word pieces are merged back into words as for text inputs (mapping.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from megalith.data.features.text import text_cells
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.errors import DataError
from megalith.explain.attention import (
    AttentionMap,
    attention_modules,
    recorded_attention,
    token_label,
)
from megalith.explain.mapping import text_words, word_values
from megalith.explain.sanity import RANDOMISATION_ROWS, randomisation_summary, randomised_copy
from megalith.explain.seq2seq_tokens import SourceAttributions, source_attributions
from megalith.explain.timing import PartTimes
from megalith.explain.trust import DELETION_ROWS, completeness_summary, deletion_summary
from megalith.models.seq2seq import Seq2Seq, beam_search

if TYPE_CHECKING:
    import pandas as pd

    from megalith.explain import Explanations, Run


def explain_seq2seq(
    run: Run,
    frame: pd.DataFrame,
    origin: str,
    steps: int = 50,
    internal_batch_size: int | None = None,
) -> Explanations:
    """Token attributions (written token x source word), with their trust figures, and cross-
    and encoder self-attention maps of a seq2seq run for each row of `frame`.

    Args:
        steps: Integrated Gradients' starting step count (raised per written token, up to 8x,
            until its completeness gap is at most 5%).
        internal_batch_size: the most (written token, step) pairs per forward pass; the
            largest a row used is recorded in the summary.

    Raises:
        DataError: the source column is missing or a value cannot be encoded.
    """
    from megalith.explain import Explanations

    model = run.model
    assert isinstance(model, Seq2Seq)  # check_supported said so
    model.eval()
    if model.source_name not in frame.columns:
        raise DataError(f"{origin}: no column '{model.source_name}' holding the sources to explain")
    times = PartTimes()
    with times.part("encode"):
        sources = run.preprocessor.encode_inputs(frame, base_dir=None, origin=origin)[
            model.source_name
        ]  # (B, S) int64
    beams = int(getattr(run.config.model, "beam_size", 1))
    with times.part("randomisation"):
        randomised = randomised_copy(model)  # one copy for every row's randomisation check
    assert isinstance(randomised, Seq2Seq)
    rows: list[dict[str, Any]] = []
    maps: list[AttentionMap] = []
    found: list[SourceAttributions] = []
    texts = text_cells(frame[model.source_name])  # as the encoder read them
    for label, ids, text in zip(frame.index, sources, texts, strict=True):
        real = [p for p, token in enumerate(ids.tolist()) if token != PAD or p == 0]
        source = torch.as_tensor(ids[: real[-1] + 1]).unsqueeze(0)  # (1, S): padding cut off
        with times.part("predict"), torch.no_grad():
            written = [int(t) for t in beam_search(model, source, beams)[0] if t not in (PAD,)]
        written = written[: written.index(EOS)] if EOS in written else written
        row = label.item() if hasattr(label, "item") else label
        with times.part("attention"):
            row_maps, explained = _attention(run, model, row, source, written, real)
        read = int(ids[0]) != PAD  # an empty source has no token to remove in the deletion check
        maps.extend(row_maps)
        attributed = source_attributions(
            model,
            source,
            written,
            EOS,
            steps=steps,
            internal_batch_size=internal_batch_size,
            randomised=randomised if len(found) < RANDOMISATION_ROWS else None,
            deletion=len(found) < DELETION_ROWS and read,
            times=times,
        )
        found.append(attributed)
        explained["row"] = row
        checked = len(found) <= DELETION_ROWS and read
        rows.append(_row_json(run, explained, text, attributed, checked=checked))
    summary = _summary(run, origin, len(rows), beams, steps, found)
    summary["seconds_by_part"] = times.as_json()
    return Explanations(rows, summary, attention=maps)


def _attention(
    run: Run, model: Seq2Seq, row: Any, source: torch.Tensor, written: list[int], real: list[int]
) -> tuple[list[AttentionMap], dict[str, Any]]:
    """The row's encoder self-attention and cross-attention maps, and what it wrote."""
    source_encoder: Any = run.preprocessor.inputs[0]
    target_encoder: Any = run.preprocessor.outputs[0]
    encoder_modules = attention_modules(model.encoder)
    cross_modules = attention_modules(model.decoder, "cross")
    with recorded_attention(encoder_modules + cross_modules) as found, torch.no_grad():
        memory, mask = model.encode(source)
        model.decode(torch.tensor([[BOS, *written]]), memory, mask)
    ids = source[0]
    keys = [token_label(source_encoder.tokenizer, int(ids[p])) for p in real]
    produced = [token_label(target_encoder.tokenizer, t) for t in written] + ["[EOS]"]
    layers = len(encoder_modules)
    encoded = torch.stack([calls[0][0] for calls in found[:layers]])  # (L, H, S, S)
    crossed = torch.stack([calls[0][0] for calls in found[layers:]])  # (L, H, T, S)
    maps = [
        AttentionMap(row, model.source_name, keys, encoded[..., real, :][..., real].numpy()),
        AttentionMap(row, f"{model.name}<-{model.source_name}", produced,
                     crossed[..., real].numpy(), keys=keys),
    ]  # fmt: skip
    written_text = target_encoder.decode_ids(written)
    return maps, {"source_tokens": keys, "written": written_text, "output_tokens": produced}


def _row_json(
    run: Run, explained: dict[str, Any], text: str, found: SourceAttributions, *, checked: bool
) -> dict[str, Any]:
    """explanations.jsonl's object for one row: the source words, the written tokens, and the
    (written token x source word) attribution matrix, with the per-token Integrated Gradients
    figures and (on the first DELETION_ROWS rows) the deletion areas."""
    model = run.model
    assert isinstance(model, Seq2Seq)
    tokenizer: Any = run.preprocessor.inputs[0].tokenizer  # type: ignore[attr-defined]
    words = text_words(tokenizer, text, found.values.shape[1])
    matrix = [
        [value for _, value in word_values(words, np.asarray(per_token))]
        for per_token in found.values.numpy()
    ]  # (T, W)
    row = {
        "row": explained["row"],
        "source_tokens": explained["source_tokens"],
        "written": explained["written"],
        "explained": {"output": model.name, "written": explained["written"]},
        "source_words": [word for word, _ in words],
        "output_tokens": explained["output_tokens"],
        "source_attributions": matrix,
        "integrated_gradients": {
            "steps": found.steps.tolist(),
            "completeness_gap": [round(float(g), 6) for g in found.gaps],
        },
    }
    cut = len(text_words(tokenizer, text, 1 << 30)) - len(words)  # past max_length
    if cut > 0:
        row["source_words_cut"] = cut
    if checked:
        row["deletion"] = {
            "area_attributed": found.deletion[0],
            "area_random": found.deletion[1],
        }
    return row


def _summary(
    run: Run, origin: str, rows: int, beams: int, steps: int, found: list[SourceAttributions]
) -> dict[str, Any]:
    """summary.json: what was explained, and the trust figures over every written token
    (completeness) or row (deletion: the first DELETION_ROWS; randomisation: the first
    RANDOMISATION_ROWS)."""
    model = run.model
    assert isinstance(model, Seq2Seq)
    checked = [f for f in found[:DELETION_ROWS] if not math.isnan(f.deletion[0])]
    areas = torch.tensor([f.deletion for f in checked], dtype=torch.float64)  # (rows, 2)
    deletion: dict[str, Any] = {
        "rows": 0,
        "passed": True,
        "note": "not measured: no row has a source token to remove",
    }
    if checked:  # rows with an empty source are left out: there is nothing to remove
        deletion = deletion_summary(areas[:, 0], areas[:, 1])
    correlations = np.array([f.randomisation for f in found], dtype=float)
    return {
        "run": str(run.path),
        "data": origin,
        "rows": rows,
        "method": "ig",
        "method_name": (
            "Integrated Gradients (Sundararajan et al. 2017) of each written token's "
            "log-probability over the source words, and attention maps: which source tokens "
            "each written token looked at (cross-attention), and the encoder's self-attention"
        ),
        "output": model.name,
        "output_type": "text",
        "target": "each token of the output written by "
        + (f"beam search ({beams} beams)" if beams > 1 else "greedy decoding (beam_size 1)"),
        "units": "log-probability (attention: weights, each token's summing to 1)",
        "baselines": "source token embeddings 0 (the padding embedding), positions kept",
        "steps": steps,
        "internal_batch_size": max(f.internal_batch_size for f in found),
        "global_importance": {},
        "trust": {
            "completeness": completeness_summary(
                torch.cat([f.gaps for f in found]),
                torch.cat([f.steps for f in found]),
                unit="written token",
            ),
            "deletion": deletion,
            "randomisation": randomisation_summary(correlations),
        },
    }
