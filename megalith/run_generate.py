"""Text from a run's language model (a GPT run, or a pretrained model with a text output),
piece by piece as tokens are sampled: what `Run.generate` and `megalith generate` stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from megalith.config import Config, is_language_model
from megalith.data.preprocess import Preprocessor
from megalith.errors import RunError
from megalith.generation import Sampling, generate_ids, stream_text


def generate_text(
    path: Path,
    config: Config,
    preprocessor: Preprocessor,
    model: nn.Module,
    device: torch.device,
    prompt: str,
    *,
    max_new_tokens: int,
    sampling: Sampling | None,
    seed: int,
    use_cache: bool,
) -> Iterator[str]:
    """Text continuing `prompt` from the run at `path`; the model moves to `device` while the
    iterator is consumed and back to the CPU after.

    Raises:
        RunError: the run is not a language model (raised here, before any text).
    """
    from megalith.data.features.text import TextOutputEncoder

    encoder = preprocessor.outputs[0]
    if not is_language_model(config) or not isinstance(encoder, TextOutputEncoder):
        raise RunError(
            f"{path} is not a language model (model.arch {config.model.arch}); "
            "generate needs a run trained with model.arch gpt, or pretrained with a text "
            "output"
        )
    tokenizer = encoder.tokenizer
    assert tokenizer is not None
    prompt_ids = encoder.encode([prompt])[0]

    def pieces() -> Iterator[str]:
        model.to(device)
        try:
            ids = generate_ids(
                model,  # type: ignore[arg-type]  # a GPT or a pretrained language model
                prompt_ids,
                max_new_tokens,
                sampling or Sampling(),
                seed=seed,
                use_cache=use_cache,
                end_id=encoder.end_id,
            )
            yield from stream_text(tokenizer.decode, ids)
        finally:
            model.cpu()

    return pieces()
