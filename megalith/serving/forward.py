"""One batch of request rows through the model: `predict`'s steps (encode, forward, decode),
with text run at the length its rows use, and the answers left as columns.

`predict` pads every text to the length fitted on train, and a Transformer's time grows with
the padded length (ONNX Runtime, docstrings classifier: 0.01 ms per token and row; fitted
length 48, test texts 16 tokens on average, median 11, one in eleven cut at 48). So a batch's
rows are sorted by length and split where the padding a split saves outweighs one more call
of the model, and each group's text is cut to its longest row. Padding is masked everywhere a
model reads text (attention keys, mean and max pooling, packed RNNs, Hugging Face attention
masks; pad embeddings are zero) and an exported graph takes any length up to the fitted one
where its description says so, so answers differ from predict's by float rounding only
(tests: served answers equal predict's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.serving.backend import Backend

ORIGIN = "data frame"
"""Where DataErrors say the rows came from (the app words it as the request)."""
CALL_COST_TOKENS = {"onnx": 32, "torch": 160}
"""One more call of the model, in padded tokens of work (rows x length): measured on the
2-layer docstrings Transformer, 2-core CPU (ONNX Runtime ~0.1 ms a call, PyTorch ~1.5 ms)."""
_ROW_SHAPED = ("category", "binary", "number")
"""Outputs with one fixed-shape value per row, which groups can be stitched back from."""


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
        """The inputs run at the length their rows use."""
        outputs: list[Any] = [encoder.config for encoder in pre.outputs]
        groups = bool(texts) and all(config.type in _ROW_SHAPED for config in outputs)
        self.call_cost = CALL_COST_TOKENS[backend.name] if groups else None
        """None: the batch runs as one group (cut to its longest text, if any)."""

    def __call__(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Decoded prediction columns for `frame`'s rows (in order).

        Raises:
            DataError: a column is absent or a value cannot be encoded (naming row and column).
        """
        run: Callable[[np.ndarray | None], dict[str, np.ndarray]]
        if self.backend.name == "onnx":
            arrays = self.preprocessor.encode_inputs(frame, base_dir=self.base_dir, origin=ORIGIN)
            ids = {name: arrays[name] for name in self.cut}
            run = functools.partial(self._onnx, arrays)
        else:
            tensors = self.preprocessor.transform(
                frame, base_dir=self.base_dir, origin=ORIGIN, with_targets=False
            )
            ids = {name: tensors.inputs[name].numpy() for name in self.cut}
            run = functools.partial(self._torch, tensors)
        return self.preprocessor.decode_columns(self._grouped(ids, len(frame), run))

    def _grouped(
        self,
        ids: dict[str, np.ndarray],
        rows: int,
        run: Callable[[np.ndarray | None], dict[str, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        """`run(index)` on each group of rows of similar length, stitched back in row order;
        `run(None)` on the whole batch when it is one group."""
        if self.call_cost is None or rows < 2:
            return run(None)
        groups = length_groups(
            np.max([row_lengths(v) for v in ids.values()], axis=0), self.call_cost
        )
        if len(groups) == 1:
            return run(None)
        pieces = [(index, run(index)) for index in groups]
        stitched = {}
        for name, first in pieces[0][1].items():
            whole = np.empty((rows, *first.shape[1:]), dtype=first.dtype)
            for index, outputs in pieces:
                whole[index] = outputs[name]
            stitched[name] = whole
        return stitched

    def _onnx(
        self, arrays: dict[str, np.ndarray], index: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        from megalith.runtime.predictor import DEFAULT_BATCH_SIZE

        bundle: Any = self.backend.predictor
        picked = dict(arrays) if index is None else {k: v[index] for k, v in arrays.items()}
        for name in self.cut:
            picked[name] = picked[name][:, : used_length(picked[name])]
        feed = [picked[name] for name in bundle.input_names]
        if bundle.seq2seq is not None:  # text written token by token, as Bundle.predict does
            (source,) = feed
            return {bundle.output_names[0]: bundle.seq2seq.write(source, DEFAULT_BATCH_SIZE)}
        return dict(bundle.run_graph(feed, DEFAULT_BATCH_SIZE))

    def _torch(self, tensors: Any, index: np.ndarray | None) -> dict[str, np.ndarray]:
        import torch

        run: Any = self.backend.run
        part = tensors if index is None else tensors.select(torch.from_numpy(index))
        for name in self.cut:
            ids = part.inputs[name]
            part.inputs[name] = ids[:, : used_length(ids.numpy())]
        return {name: value.numpy() for name, value in run.forward_table(part).items()}


def used_length(ids: np.ndarray) -> int:
    """Columns of token ids (B, L) up to the last one any row uses (not 0 = PAD); at least 1."""
    used = np.flatnonzero((ids != 0).any(axis=0))
    return int(used[-1]) + 1 if len(used) else 1


def row_lengths(ids: np.ndarray) -> np.ndarray:
    """int (B,): each row's columns up to its last token (0 for an empty text)."""
    positions = np.arange(1, ids.shape[1] + 1)
    return np.where(ids != 0, positions, 0).max(axis=1)


def length_groups(lengths: np.ndarray, call_cost: float) -> list[np.ndarray]:
    """Row indices grouped by length: sorted by it, and split in two where the padding saved
    (rows x tokens) is largest, while that exceeds `call_cost`; each group ascending."""
    order = np.argsort(lengths, kind="stable")
    return _split(order, lengths[order], call_cost)


def _split(index: np.ndarray, lengths: np.ndarray, call_cost: float) -> list[np.ndarray]:
    if len(index) < 2:
        return [index]
    rows_before = np.arange(1, len(index))  # a split after each row but the last
    saved = rows_before * (lengths[-1] - lengths[:-1])  # the left part runs at its own longest
    best = int(np.argmax(saved))
    if saved[best] <= call_cost:
        return [index]
    cut = best + 1
    return _split(index[:cut], lengths[:cut], call_cost) + _split(
        index[cut:], lengths[cut:], call_cost
    )
