"""The validation metric a run watches: early stopping's `train.early_stop.metric`, checked
against what validation reports before step 0, else the first metric after the loss (what the
progress bar shows)."""

from __future__ import annotations

from megalith.config import Config
from megalith.data.preprocess import Preprocessor
from megalith.errors import ConfigError, did_you_mean
from megalith.evaluate.metrics import available_metrics
from megalith.evaluate.speech import SPEECH_METRICS
from megalith.models import ASRConfig


def check_watched_metric(cfg: Config, preprocessor: Preprocessor) -> None:
    """Refuse an early-stopping metric validation does not report.

    Raises:
        ConfigError: naming train.early_stop.metric, a close match and the metrics there are.
    """
    if cfg.train.early_stop is None:
        return
    known = [f"val/{name}" for name in _metric_names(cfg, preprocessor)]
    metric = cfg.train.early_stop.metric
    if metric not in known:
        raise ConfigError(
            f"train.early_stop.metric: unknown metric '{metric}'{did_you_mean(metric, known)}; "
            f"choose from {', '.join(known)}"
        )


def watched_metric(cfg: Config, preprocessor: Preprocessor) -> str:
    """`val/NAME`: early stopping's metric, else the first one validation reports after the loss."""
    if cfg.train.early_stop is not None:
        return cfg.train.early_stop.metric
    return "val/" + _metric_names(cfg, preprocessor)[1]


def _metric_names(cfg: Config, preprocessor: Preprocessor) -> list[str]:
    """What validation reports: a speech recognizer's loss, WER and CER, else by output type."""
    if isinstance(cfg.model, ASRConfig):
        return list(SPEECH_METRICS)
    return available_metrics(preprocessor.output_specs)
