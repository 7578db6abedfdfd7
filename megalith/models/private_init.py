"""Initial token embeddings for private training: near zero, so that DP-SGD reaches them.

DP-SGD clips each row's whole gradient to one norm and adds the same noise to every weight. A text
model's row gradient has two parts: the output layer's, which scales with the pooled feature
vector, and the token embeddings', which the output layer's weights scale and the pooling
divides among the row's tokens. With PyTorch's N(0, 1) embeddings the pooled features are large,
so the output layer's part takes nearly all of the clipped norm, and what reaches each embedding
weight stays far below the noise: the benchmark's text bag kept about 0.2 accuracy at any epsilon
(docs/privacy.md). Started at a small scale, the features (and the output layer's part) are
small, each row's clipped gradient goes to its own tokens' embeddings, and the same model reaches
more than twice that accuracy at epsilon 8. Small initial weights are a common choice for DP
training (e.g. zero-initialised output layers, De et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from megalith.models.blocks import TextEncoder
from megalith.models.sequence import BagEncoder


def shrink_text_embeddings(
    model: nn.Module,
    scale: float,
    notice: Callable[[str], None] | None = None,
    inputs: list[str] | None = None,
) -> list[str]:
    """Multiply every text input's token embedding table by `scale`, in place (the padding row
    stays 0); returns the names of the tables it changed, each with a `notice` line, which
    names the input column (`inputs`: the column of encoders.i) rather than the module."""
    columns = {f"encoders.{i}": column for i, column in enumerate(inputs or [])}
    changed = []
    for name, module in model.named_modules():
        if isinstance(module, TextEncoder) and scale != 1.0:
            with torch.no_grad():
                module.embedding.weight.mul_(scale)
            changed.append(name)
            if notice is not None:
                notice(
                    f"train.privacy: {_named(name, columns)} token embeddings start at "
                    f"{scale:g} x PyTorch's N(0, 1), so each row's clipped gradient reaches them "
                    "(train.privacy.text_embedding_scale; docs/privacy.md)"
                )
        bag = isinstance(module, TextEncoder) and isinstance(module.sequence, BagEncoder)
        if bag and not module.weighted and notice is not None:
            notice(
                f"train.privacy: {_named(name, columns)} is not idf-weighted; with privacy, "
                "idf: true and tokenizer: hash on the text input (a hashed, L2-normalised "
                "TF-IDF bag) keep far more accuracy (docs/privacy.md, Text models)"
            )
    return changed


def _named(module: str, columns: dict[str, str]) -> str:
    """input 'COLUMN' for a model's encoders.i (the user's name for it), else the module name."""
    return f"input '{columns[module]}'" if module in columns else module
