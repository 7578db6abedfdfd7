"""Explaining a seq2seq model: per row, what it writes and, per layer and head, which source
tokens each written token looked at (cross-attention), with the encoder's self-attention.

The output is written by the run's own beam search; the decoder then reads it back once (BOS
first, teacher forcing) with the attention hooks on, so that each written token's row of the
cross-attention map is the one the decoder used to predict that token. Token attributions for
seq2seq models are not computed yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.explain.attention import (
    AttentionMap,
    attention_modules,
    recorded_attention,
    token_label,
)
from megalith.models.seq2seq import Seq2Seq, beam_search

if TYPE_CHECKING:
    import pandas as pd

    from megalith.explain import Explanations, Run


def explain_seq2seq(run: Run, frame: pd.DataFrame, origin: str) -> Explanations:
    """Cross- and encoder self-attention maps of a seq2seq run for each row of `frame`.

    Raises:
        DataError: the source column is missing or a value cannot be encoded.
    """
    from megalith.explain import Explanations

    model = run.model
    assert isinstance(model, Seq2Seq)  # check_supported said so
    model.eval()
    source_encoder: Any = run.preprocessor.inputs[0]
    target_encoder: Any = run.preprocessor.outputs[0]
    sources = run.preprocessor.encode_inputs(frame, base_dir=None, origin=origin)[
        model.source_name
    ]  # (B, S) int64
    beams = int(getattr(run.config.model, "beam_size", 1))
    encoder_modules = attention_modules(model.encoder)
    cross_modules = attention_modules(model.decoder, "cross")
    rows: list[dict[str, Any]] = []
    maps: list[AttentionMap] = []
    for label, ids in zip(frame.index, sources, strict=True):
        source = torch.as_tensor(ids).unsqueeze(0)  # (1, S)
        with torch.no_grad():
            written = [int(t) for t in beam_search(model, source, beams)[0] if t not in (PAD,)]
        written = written[: written.index(EOS)] if EOS in written else written
        with recorded_attention(encoder_modules + cross_modules) as found, torch.no_grad():
            memory, mask = model.encode(source)
            model.decode(torch.tensor([[BOS, *written]]), memory, mask)
        real = [p for p, token in enumerate(ids.tolist()) if token != PAD or p == 0]
        keys = [token_label(source_encoder.tokenizer, int(ids[p])) for p in real]
        produced = [token_label(target_encoder.tokenizer, t) for t in written] + ["[EOS]"]
        layers = len(encoder_modules)
        encoded = torch.stack([calls[0][0] for calls in found[:layers]])  # (L, H, S, S)
        crossed = torch.stack([calls[0][0] for calls in found[layers:]])  # (L, H, T, S)
        row = label.item() if hasattr(label, "item") else label
        maps.append(
            AttentionMap(row, model.source_name, keys, encoded[..., real, :][..., real].numpy())
        )
        maps.append(
            AttentionMap(row, f"{model.name}<-{model.source_name}", produced,
                         crossed[..., real].numpy(), keys=keys)
        )  # fmt: skip
        rows.append(
            {"row": row, "source_tokens": keys, "written": target_encoder.decode_ids(written)}
        )
    summary = {
        "run": str(run.path),
        "data": origin,
        "rows": len(rows),
        "method": "attention",
        "method_name": (
            "attention maps: which source tokens each written token looked at (cross-attention), "
            "and the encoder's self-attention (token attributions for seq2seq models are not "
            "computed yet)"
        ),
        "output": model.name,
        "output_type": "text",
        "target": f"the output written by beam search ({beams} beams)",
        "units": "attention weights (each token's weights sum to 1 over the tokens it sees)",
        "baselines": "none",
        "global_importance": {},
        "trust": {},
    }
    return Explanations(rows, summary, attention=maps)
