"""The gates on made-up measurements, the settings' checks, and the scheme chosen per graph."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from megalith.compress.gates import Watched, judge, metric_drop
from megalith.compress.measure import Measurement
from megalith.compress.quantize import choose_scheme
from megalith.compress.settings import validate_settings
from megalith.errors import ConfigError

ACCURACY = Watched("accuracy", True, "test")


def _measured(name: str, accuracy: float, ms1: float, ms32: float) -> Measurement:
    return Measurement(
        name=name, kind="run", path=name, bundle=name, parameters=1000, size_mb=1.0,
        bundle_mb=1.0, macs=500, macs_note="", latency_ms={"1": ms1, "32": ms32},
        metrics={"accuracy": accuracy, "loss": 0.3},
    )  # fmt: skip


ORIGINAL = _measured("original", 0.900, 2.0, 20.0)


def _judge(candidate: Measurement, previous: Measurement = ORIGINAL) -> dict:
    return judge(candidate, previous, ORIGINAL, ACCURACY, max_metric_drop=1.0, min_speedup=1.05)


def test_a_faster_step_within_one_point_is_accepted() -> None:
    verdict = _judge(_measured("quantize", 0.892, 1.0, 8.0))
    assert verdict["accepted"], verdict
    assert verdict["metric_drop_points"] == pytest.approx(0.8)
    assert verdict["speedup_vs_previous"] == {"1": 2.0, "32": 2.5}


def test_a_step_that_costs_more_than_the_limit_is_rejected_with_its_figures() -> None:
    verdict = _judge(_measured("prune", 0.880, 1.0, 8.0))
    assert not verdict["accepted"]
    (reason,) = verdict["reasons"]
    assert "2.00 points below" in reason and "0.9000" in reason and "0.8800" in reason


def test_a_step_slower_at_one_batch_size_is_rejected() -> None:
    verdict = _judge(_measured("quantize", 0.900, 2.5, 8.0))
    assert not verdict["accepted"]
    (reason,) = verdict["reasons"]
    assert reason.startswith("not faster at batch 1") and "0.800x" in reason


def test_speed_is_judged_against_the_previous_accepted_model_not_the_original() -> None:
    pruned = _measured("prune", 0.899, 1.0, 10.0)
    # twice as fast as the original, but slower than the pruned model it started from
    verdict = _judge(_measured("quantize", 0.898, 1.2, 10.0), previous=pruned)
    assert not verdict["accepted"] and verdict["previous"] == "prune"
    assert len(verdict["reasons"]) == 2  # 1.2 ms > 1.0 ms, and 10 ms is not 5% faster


def test_a_point_is_a_hundredth_and_a_rising_loss_is_a_drop() -> None:
    assert metric_drop(0.90, 0.88, ACCURACY) == pytest.approx(2.0)
    assert metric_drop(0.90, 0.95, ACCURACY) == pytest.approx(-5.0)
    mae = Watched("mae", False, "test")
    assert metric_drop(0.30, 0.33, mae) == pytest.approx(3.0)


def test_a_nan_metric_is_rejected() -> None:
    verdict = _judge(_measured("quantize", float("nan"), 1.0, 8.0))
    assert not verdict["accepted"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": ["quantize", "prune"]}, "out of order; they run as distill -> prune"),
        ({"steps": ["prune", "prune"]}, "appears twice"),
        ({"steps": ["prun"]}, "did you mean 'prune'"),
        ({"prune": 1.5}, "compress.prune: Input should be less than 1"),
        ({"max_metric_drop": -1}, "compress.max_metric_drop"),
        ({"max_metric_dorp": 2}, "compress.max_metric_dorp: unknown key (did you mean"),
    ],
)
def test_bad_settings_name_their_key(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid compress settings") as caught:
        validate_settings(settings)
    assert message in str(caught.value)


def _graph(op: str) -> onnx.ModelProto:
    """One-node graph: a Conv (x (1,1,4,4), w (2,1,3,3)) or a MatMul (x (1,4), w (4,2))."""
    conv = op == "Conv"
    x_shape, w_shape = ([1, 1, 4, 4], [2, 1, 3, 3]) if conv else ([1, 4], [4, 2])
    weight = helper.make_tensor("w", TensorProto.FLOAT, w_shape, [0.1] * (18 if conv else 8))
    node = helper.make_node(op, ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight],
    )  # fmt: skip
    return helper.make_model(graph)


def test_auto_picks_static_for_convolutions_and_dynamic_for_matmuls() -> None:
    scheme, why = choose_scheme(_graph("Conv"))
    assert scheme == "static" and "ConvInteger" in why
    scheme, why = choose_scheme(_graph("MatMul"))
    assert scheme == "dynamic" and "no convolution" in why


def test_a_step_after_quantize_is_refused_and_a_custom_step_keeps_its_name() -> None:
    from pathlib import Path

    from megalith.compress.chain import resolve_steps
    from megalith.compress.settings import CompressSettings
    from megalith.errors import RunError

    def _halve(run: object, folder: Path, console: object) -> object:
        return run

    settings = CompressSettings()
    steps = resolve_steps([_halve, "quantize"], settings, {})
    assert [step.name for step in steps] == ["halve", "quantize"]
    with pytest.raises(RunError, match="quantize writes a bundle, so it must be the last"):
        resolve_steps(["quantize", _halve], settings, {})
