"""Task metrics from model outputs and targets, computed with torchmetrics.

Names: classification reports `accuracy`, `macro_f1` and (two classes) `auc`; a binary output
reports `accuracy`, `f1`, `precision` and `recall` at its decision threshold, and `auc`;
regression reports `mse`, `mae` and `r2` in the target's original units; text outputs report
`perplexity` and `token_accuracy` (see megalith.evaluate.evaluation). With several outputs each
name is prefixed by the output's name (`price/mae`). `loss` is added by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from megalith.data.specs import OutputSpec

HIGHER_IS_BETTER = {
    "accuracy": True,
    "macro_f1": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "auc": True,
    "r2": True,
    "token_accuracy": True,
    "exact_match": True,
    "bleu": True,
    "hr": True,
    "ndcg": True,
    "mrr": True,
    "coverage": True,
}
"""Metrics to maximise; every other metric (loss, mse, mae, perplexity) is minimised. Ranking
metrics (hr@10, sampled_ndcg@10, ...) are looked up without their cut-off and `sampled_`."""


def metric_names(spec: OutputSpec) -> list[str]:
    """The metrics reported for one output."""
    if spec.type == "category":
        return ["accuracy", "macro_f1"] + (["auc"] if spec.num_classes == 2 else [])
    if spec.type == "binary":
        return ["accuracy", "f1", "precision", "recall", "auc"]
    if spec.type == "text":  # computed batch by batch in megalith.evaluate.evaluation
        return ["perplexity", "token_accuracy"]
    return ["mse", "mae", "r2"]


def higher_is_better(metric: str) -> bool:
    """Whether a (possibly prefixed, e.g. 'val/price/r2') metric improves upward."""
    name = metric.rsplit("/", 1)[-1].split("@", 1)[0].removeprefix("sampled_")
    return HIGHER_IS_BETTER.get(name, False)


def output_metrics(
    spec: OutputSpec, output: torch.Tensor, target: torch.Tensor
) -> dict[str, float]:
    """Metrics of one output over a whole split; output and target on CPU, fp32."""
    # imported here: torchmetrics takes ~1.5 s to import, which would delay the first step
    from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
    from torchmetrics.functional.classification import (
        binary_accuracy,
        binary_auroc,
        binary_f1_score,
        binary_precision,
        binary_recall,
        multiclass_accuracy,
        multiclass_f1_score,
    )

    if spec.type == "category":
        k = spec.num_classes
        preds = output.argmax(dim=1)
        metrics = {
            "accuracy": multiclass_accuracy(preds, target, num_classes=k, average="micro"),
            "macro_f1": multiclass_f1_score(preds, target, num_classes=k, average="macro"),
        }
        if k == 2:
            metrics["auc"] = binary_auroc(output.softmax(dim=1)[:, 1], target)
    elif spec.type == "binary":  # decisions at the threshold predict applies (p > threshold)
        probs = output.sigmoid()
        labels = target.long()
        decided = (probs > spec.threshold).long()
        metrics = {
            "accuracy": binary_accuracy(decided, labels),
            "f1": binary_f1_score(decided, labels),
            "precision": binary_precision(decided, labels),
            "recall": binary_recall(decided, labels),
            "auc": binary_auroc(probs, labels),
        }
    else:
        preds, truth = output * spec.std + spec.mean, target * spec.std + spec.mean
        metrics = {
            "mse": mean_squared_error(preds, truth),
            "mae": mean_absolute_error(preds, truth),
            "r2": r2_score(preds, truth) if len(truth) > 1 else torch.tensor(float("nan")),
        }
    return {name: float(value) for name, value in metrics.items()}


def generation_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """exact_match (share of outputs equal to the reference) and corpus BLEU (0-100, sacrebleu)."""
    import sacrebleu  # imported here: only seq2seq runs need it

    if not references:
        return {}
    exact = sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True))
    bleu = sacrebleu.corpus_bleu(list(predictions), [list(references)])
    return {"exact_match": exact / len(references), "bleu": float(bleu.score)}


def compute_metrics(
    specs: Sequence[OutputSpec],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
) -> dict[str, float]:
    """Every output's metrics, prefixed by the output name when there is more than one output."""
    result: dict[str, float] = {}
    for spec in specs:
        values = output_metrics(spec, outputs[spec.name].float(), targets[spec.name])
        prefix = f"{spec.name}/" if len(specs) > 1 else ""
        result.update({prefix + name: value for name, value in values.items()})
    return result


def available_metrics(specs: Sequence[OutputSpec]) -> list[str]:
    """Every metric name compute_metrics will produce for these outputs, plus 'loss'."""
    names = ["loss"]
    for spec in specs:
        prefix = f"{spec.name}/" if len(specs) > 1 else ""
        names += [prefix + name for name in metric_names(spec)]
    return names
