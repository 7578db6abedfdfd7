"""Predict with an exported bundle, without PyTorch.

    from megalith.runtime import load_bundle
    predictions = load_bundle("digits-bundle").predict(frame)

This package imports numpy, pandas, ONNX Runtime, tokenizers, Pillow and pydantic (through the
preprocessor's feature configs), never torch: `pip install "megalith[runtime]"` is enough to
serve a bundle. Rows are encoded by the same numpy code as training (each encoder's `encode`,
through megalith.data.preprocess), and decoded by the same `decode`.
"""

from __future__ import annotations

from megalith.runtime.predictor import Bundle, is_bundle, load_bundle

__all__ = ["Bundle", "is_bundle", "load_bundle"]
