"""Metrics against values computed by hand."""

from __future__ import annotations

import pytest
import torch

from megalith.data.specs import OutputSpec
from megalith.evaluate.metrics import available_metrics, compute_metrics, higher_is_better


def test_multiclass_accuracy_and_macro_f1() -> None:
    spec = OutputSpec("label", "category", num_classes=3)
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    target = torch.tensor([0, 1, 2, 2])
    metrics = compute_metrics([spec], {"label": logits}, {"label": target})
    assert metrics["accuracy"] == pytest.approx(0.75)
    # per-class F1: class0 1.0, class1 2/3, class2 2/3
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert "auc" not in metrics


def test_binary_metrics() -> None:
    spec = OutputSpec("y", "binary", num_classes=2)
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    target = torch.tensor([1.0, 0.0, 0.0, 0.0])
    metrics = compute_metrics([spec], {"y": logits}, {"y": target})
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["auc"] == pytest.approx(1.0)
    assert metrics["f1"] == pytest.approx(2 / 3)


def test_binary_decision_metrics_use_the_output_threshold() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = torch.Generator().manual_seed(0)
    logits = torch.randn(400, generator=rng) * 2 - 2.5  # mostly low probabilities
    target = (torch.rand(400, generator=rng) < torch.sigmoid(logits + 1)).float()
    decided = (torch.sigmoid(logits) > 0.2).numpy()
    truth = target.numpy()
    spec = OutputSpec("y", "binary", num_classes=2, threshold=0.2)
    metrics = compute_metrics([spec], {"y": logits}, {"y": target})
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, decided))
    assert metrics["f1"] == pytest.approx(f1_score(truth, decided))
    assert metrics["precision"] == pytest.approx(precision_score(truth, decided))
    assert metrics["recall"] == pytest.approx(recall_score(truth, decided))
    at_half = compute_metrics(
        [OutputSpec("y", "binary", num_classes=2)], {"y": logits}, {"y": target}
    )
    assert at_half["accuracy"] != pytest.approx(metrics["accuracy"])  # the threshold matters
    assert at_half["auc"] == pytest.approx(metrics["auc"])  # ... but not to the ranking


def test_regression_metrics_are_in_original_units() -> None:
    spec = OutputSpec("price", "number", mean=100.0, std=10.0)
    outputs = torch.tensor([0.0, 1.0, -1.0])  # standardised: 100, 110, 90
    target = torch.tensor([0.0, 1.0, 0.0])  # 100, 110, 100
    metrics = compute_metrics([spec], {"price": outputs}, {"price": target})
    assert metrics["mse"] == pytest.approx(100 / 3)
    assert metrics["mae"] == pytest.approx(10 / 3)


def test_several_outputs_are_prefixed() -> None:
    specs = [OutputSpec("a", "number"), OutputSpec("b", "category", num_classes=2)]
    assert available_metrics(specs) == [
        "loss",
        "a/mse",
        "a/mae",
        "a/r2",
        "b/accuracy",
        "b/macro_f1",
        "b/auc",
    ]
    assert higher_is_better("val/b/accuracy") and not higher_is_better("val/a/mae")
