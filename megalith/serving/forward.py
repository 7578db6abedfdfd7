"""One batch of request rows through the model: `predict`'s steps (encode, forward, decode),
with each text input cut to the batch's longest text, and the answers left as columns.

`predict` pads every text to the length fitted on train; a Transformer's cost grows with it
(the docstrings classifier: 48 tokens, of which its test texts use 16 on average). Padding is
masked everywhere a model reads text (attention keys, mean and max pooling, packed RNNs,
Hugging Face attention masks; pad embeddings are zero), and an exported graph takes any length
up to the fitted one where its description says so, so cutting the all-padding columns
changes the answers by float rounding only (tests: served answers equal predict's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.serving.backend import Backend

ORIGIN = "data frame"
"""Where DataErrors say the rows came from (the app words it as the request)."""


class BatchForward:
    """`backend`'s predictions for a batch's frame, as decoded columns (`decode_columns`).

    Args:
        backend: the torch or onnx backend (not a language model's).
        base_dir: the folder image paths resolve under (the server's --allow-paths).
    """

    def __init__(self, backend: Backend, base_dir: Path | None) -> None:
        self.backend, self.base_dir = backend, base_dir
        pre = backend.predictor.preprocessor
        self.preprocessor = pre
        configs: list[Any] = [encoder.config for encoder in pre.inputs]
        texts = [config.name for config in configs if config.type == "text"]
        if backend.name == "onnx":
            free = set(getattr(backend.predictor, "free_length_inputs", []))
            texts = [name for name in texts if name in free]
        self.cut = texts
        """The inputs cut to the batch's longest row."""

    def __call__(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Decoded prediction columns for `frame`'s rows (in order).

        Raises:
            DataError: a column is absent or a value cannot be encoded (naming row and column).
        """
        if self.backend.name == "onnx":
            return self._onnx(frame)
        return self._torch(frame)

    def _onnx(self, frame: pd.DataFrame) -> dict[str, Any]:
        from megalith.runtime.predictor import DEFAULT_BATCH_SIZE

        bundle: Any = self.backend.predictor
        arrays = self.preprocessor.encode_inputs(frame, base_dir=self.base_dir, origin=ORIGIN)
        for name in self.cut:
            arrays[name] = arrays[name][:, : used_length(arrays[name])]
        feed = [arrays[name] for name in bundle.input_names]
        return self.preprocessor.decode_columns(bundle.run_graph(feed, DEFAULT_BATCH_SIZE))

    def _torch(self, frame: pd.DataFrame) -> dict[str, Any]:
        run: Any = self.backend.run
        tensors = self.preprocessor.transform(
            frame, base_dir=self.base_dir, origin=ORIGIN, with_targets=False
        )
        for name in self.cut:
            ids = tensors.inputs[name]
            tensors.inputs[name] = ids[:, : used_length(ids.numpy())]
        return self.preprocessor.decode_columns(run.forward_table(tensors))


def used_length(ids: np.ndarray) -> int:
    """Columns of token ids (B, L) up to the last one any row uses (not 0 = PAD); at least 1."""
    used = np.flatnonzero((ids != 0).any(axis=0))
    return int(used[-1]) + 1 if len(used) else 1
