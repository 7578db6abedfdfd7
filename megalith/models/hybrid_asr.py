"""The hybrid CTC/attention recognizer's training pieces: teacher-forced decoder inputs and the
joint loss (S. Kim, T. Hori, S. Watanabe, "Joint CTC-Attention Based End-to-End Speech
Recognition Using Multi-Task Learning", ICASSP 2017):

    loss = ctc_weight * CTC + (1 - ctc_weight) * cross-entropy of the attention decoder

The CTC term aligns monotonically and so keeps the decoder's attention from wandering; the
decoder models the dependencies between tokens that CTC's per-frame independence cannot. The
cross-entropy has no label smoothing, as the seq2seq family's has none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import PAD
from megalith.models.asr import ATTENTION, ctc_loss


def attention_inputs(table: TensorTable, name: str) -> TensorTable:
    """`table` with the decoder's teacher-forced ids as input `name`: the framed transcript
    (B, L+2) BOS ... EOS PAD without its last position (B, L+1). The targets stay framed
    (CTC reads the labels, the decoder predicts framed[:, 1:]). A table without targets
    (predicting) is returned as it is."""
    framed = table.targets.get(name)
    if framed is None:
        return table
    return TensorTable(
        inputs={**table.inputs, name: framed[:, :-1]}, targets=table.targets, rows=table.rows
    )


def attention_loss(
    logits: torch.Tensor, framed: torch.Tensor, tokens: torch.Tensor | None = None
) -> torch.Tensor:
    """The decoder's cross-entropy: logits (B, L+1, V) predicting framed[:, 1:] (B, L+1),
    PAD ignored; summed and divided by `tokens` (the step's token share), else the mean over
    real tokens (EOS included)."""
    target = framed[:, 1 : 1 + logits.shape[1]]
    flat_logits, flat = logits.float().flatten(0, 1), target.flatten()
    if tokens is None:
        return F.cross_entropy(flat_logits, flat, ignore_index=PAD)
    return F.cross_entropy(flat_logits, flat, ignore_index=PAD, reduction="sum") / tokens


def hybrid_loss(
    outputs: dict[str, torch.Tensor],
    framed: torch.Tensor,
    name: str,
    ctc_weight: float,
    tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """ctc_weight * CTC + (1 - ctc_weight) * attention cross-entropy of output `name`; the CTC
    loss alone at ctc_weight 1 or when the outputs hold no decoder logits (no transcript given).

    Args:
        outputs: the model's outputs (megalith.models.asr.ASR.forward).
        framed: (B, L+2) targets framed BOS ... EOS, PAD-padded.
    """
    ctc = ctc_loss(outputs[name], framed, tokens)
    attention = outputs.get(name + ATTENTION)
    if ctc_weight >= 1 or attention is None:
        return ctc
    return ctc_weight * ctc + (1 - ctc_weight) * attention_loss(attention, framed, tokens)
