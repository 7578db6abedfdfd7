"""Loud warnings about a trained network's test results, for the summary and the report.

Three checks per output, each a warning {'output', 'kind', 'message', 'causes'} in eval.json's
`warnings` (`causes`: the likely causes and what to change, the same sentence for every warning):
  single_class   a classifier predicts one class for every test row (the test rows hold more)
  majority       it does no better than the majority baseline: accuracy and (macro) F1 both at
                 or below it; for a number output, r2 at or below the train mean's
  below_linear   its headline metric trails the linear baseline's by more than
                 max(MARGIN, 1 / sqrt(test rows)) (about two standard errors of an accuracy):
                 accuracy (category), auc (binary), r2 (number)
The last two need the baselines (megalith.evaluate.baselines); a single class is found from the
network's own test predictions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from megalith.data.specs import OutputSpec
from megalith.data.tensors import TensorTable

if TYPE_CHECKING:
    from megalith.run import Run

MARGIN = 0.01
"""The network is 'below the linear baseline' only when its headline metric trails by more than
this, or by more than 1 / sqrt(test rows) on a small test split: smaller gaps are noise."""
HEADLINE = {"category": "accuracy", "binary": "auc", "number": "r2"}
"""The metric the network and the linear baseline are compared on, per output type."""
_EVEN = 1e-9
_CLASSIFIERS = ("category", "binary")


def check_run(run: Run, test: TensorTable, scores: Mapping[str, Any]) -> list[dict[str, str]]:
    """The warnings of a finished run on its encoded test split (`scores`: eval.json so far)."""
    predicted, names = _network_classes(run, test)
    truth = {name: t.cpu().long().numpy() for name, t in test.targets.items() if name in predicted}
    return result_warnings(
        run.preprocessor.output_specs,
        predicted,
        truth,
        scores.get("test", {}),
        scores.get("baselines"),
        names,
        likely_causes(run, scores.get("training", {})),
        len(test),
    )


def _network_classes(
    run: Run, test: TensorTable
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """({output: predicted class per test row}, {output: class names}) of the classifiers."""
    from megalith.batching import forward_in_batches
    from megalith.device import resolve_device, resolve_precision

    classifiers: list[Any] = [
        e for e in run.preprocessor.outputs if getattr(e.config, "type", "") in _CLASSIFIERS
    ]
    if not classifiers or not len(test):
        return {}, {}
    device = resolve_device(run.config.train.device)
    dtype = resolve_precision(run.config.train.precision, device)
    try:
        outputs = forward_in_batches(
            run.model.to(device), test, run.config.train.eval_batch_size, device, dtype
        )
    finally:
        run.model.cpu()
    predicted, names = {}, {}
    for encoder in classifiers:
        config = encoder.config
        threshold = getattr(encoder, "threshold", 0.5)  # the decision predict applies
        predicted[config.name] = predicted_classes(config.type, outputs[config.name], threshold)
        state = encoder.state()
        names[config.name] = [str(c) for c in state.get("classes", state.get("values", []))]
    return predicted, names


def predicted_classes(kind: str, output: torch.Tensor, threshold: float) -> np.ndarray:
    """Class index per row: argmax of category logits (N, K), or a binary logit (N,) whose
    probability is above `threshold`."""
    output = output.detach().float().cpu()
    if kind == "binary":
        return (torch.sigmoid(output.reshape(-1)) > threshold).long().numpy()
    return output.argmax(dim=1).numpy()


def result_warnings(
    specs: Sequence[OutputSpec],
    predicted: Mapping[str, np.ndarray],
    truth: Mapping[str, np.ndarray],
    test: Mapping[str, float],
    baselines: Mapping[str, Any] | None,
    class_names: Mapping[str, Sequence[str]],
    causes: str,
    test_rows: int,
) -> list[dict[str, str]]:
    """Every warning, in output order (see the module doc).

    Args:
        predicted, truth: test class indices per classification output.
        test: the network's test metrics (prefixed by the output when there are several).
        baselines: eval.json's `baselines`, or None when they were not fitted.
        class_names: class names per classification output, by index.
        causes: the sentence of likely causes given with each warning.
        test_rows: rows in the test split (a small one needs a larger gap to call it below).
    """
    found = []
    for spec in specs:
        prefix = f"{spec.name}/" if len(specs) > 1 else ""
        network = {
            name.removeprefix(prefix): v for name, v in test.items() if name.startswith(prefix)
        }
        names = class_names.get(spec.name, [])
        message = None
        if spec.name in predicted:
            message = _single_class(predicted[spec.name], truth[spec.name], names)
        if message:
            found.append(_warning(spec.name, "single_class", message, causes))
        entry = (baselines or {}).get(spec.name) or {}
        if not message and entry.get("majority"):
            message = _no_better_than_majority(spec, network, entry["majority"])
            if message:
                found.append(_warning(spec.name, "majority", message, causes))
        message = _below_linear(spec, network, entry, test_rows)
        if message:
            found.append(_warning(spec.name, "below_linear", message, causes))
    return found


def _warning(output: str, kind: str, message: str, causes: str) -> dict[str, str]:
    return {"output": output, "kind": kind, "message": f"{output}: {message}", "causes": causes}


def warning_lines(warnings: Sequence[Mapping[str, str]]) -> list[str]:
    """The warnings' messages, each distinct 'Likely causes' sentence once after the last
    warning that gives it (a run whose outputs all fail gets it once, at the end)."""
    lines = []
    for at, warning in enumerate(warnings):
        lines.append(warning["message"])
        causes = warning.get("causes")
        if causes and all(later.get("causes") != causes for later in warnings[at + 1 :]):
            lines.append(causes)
    return lines


def _single_class(predicted: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> str | None:
    if len(predicted) == 0 or len(np.unique(truth)) < 2 or len(np.unique(predicted)) > 1:
        return None
    only = int(predicted[0])
    label = names[only] if only < len(names) else str(only)
    share = float(np.mean(truth == only))
    return (
        f"the network predicts '{label}' for every one of the {len(predicted):,} test rows, "
        f"although the test split holds {len(np.unique(truth))} classes ('{label}' is "
        f"{share:.0%} of them): it has learned nothing but the most common answer."
    )


def _no_better_than_majority(
    spec: OutputSpec,
    network: Mapping[str, float],
    majority: Mapping[str, float],
) -> str | None:
    if spec.type == "number":
        if "r2" in network and network["r2"] <= majority["r2"] + _EVEN:
            return (
                f"the network does no better than always predicting the train mean (test r2 "
                f"{network['r2']:.3f}, the mean's {majority['r2']:.3f})."
            )
        return None
    f1 = "f1" if spec.type == "binary" else "macro_f1"
    if any(name not in network for name in ("accuracy", f1)):
        return None
    if network["accuracy"] > majority["accuracy"] + _EVEN or network[f1] > majority[f1] + _EVEN:
        return None
    return (
        f"the network does no better than always predicting the majority class (test "
        f"accuracy {network['accuracy']:.3f}, the majority's {majority['accuracy']:.3f}; "
        f"{f1} {network[f1]:.3f}, the majority's {majority[f1]:.3f})."
    )


def _below_linear(
    spec: OutputSpec, network: Mapping[str, float], entry: Mapping[str, Any], test_rows: int
) -> str | None:
    metric = HEADLINE.get(spec.type)
    linear = entry.get("linear") or {}
    if metric is None or metric not in linear or metric not in network:
        return None
    ours, theirs = network[metric], linear[metric]
    if not theirs - ours > max(MARGIN, 1 / math.sqrt(max(test_rows, 1))):  # False for NaN
        return None
    model = (entry.get("linear_fit") or {}).get("model", "a linear model")
    return (
        f"the network is BELOW the linear baseline: test {metric} {ours:.3f}, while {model} "
        f"on the same inputs reaches {theirs:.3f}."
    )


def likely_causes(run: Run, training: Mapping[str, Any]) -> str:
    """'Likely causes: too few steps (...), the learning rate (...), or too small a model (...).'"""
    train = run.config.train
    steps = training.get("steps")
    epochs = training.get("epochs", train.epochs)
    epochs_run = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    done = f"{steps:,} optimizer steps in {epochs_run}" if steps is not None else "few steps"
    return (
        f"Likely causes: too few steps ({done}; raise train.epochs), the learning rate "
        f"(train.optimizer.lr is {train.optimizer.lr:g}; try a few times higher or lower), or "
        f"too small a model (model.arch {run.config.model.arch}; widen or deepen it)."
    )
