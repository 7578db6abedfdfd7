"""Shrinking a trained run: distillation, pruning, quantization."""
