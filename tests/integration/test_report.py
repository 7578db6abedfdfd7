"""report.html, plots/, compare and TensorBoard logging on real (tiny) runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from chromium import CHROMIUM, load_page
from conftest import REPO, CliResult

import megalith as mg
from megalith.errors import ConfigError, RunError
from megalith.evaluate.report import write_report

Cli = Callable[..., CliResult]


class PageFacts(HTMLParser):
    """Section ids, headings, and every URL-bearing attribute of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.images = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "section":
            self.sections.append(str(values.get("id")))
        if tag == "img":
            self.images += 1
        self.urls += [str(v) for k, v in attrs if k in ("src", "href", "action", "srcset")]


def _train(name: str, output: Path, *overrides: str) -> Path:
    mg.train(REPO / "examples" / name, output_dir=output, overrides=["train.epochs=2", *overrides])
    return output


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "digits": _train("digits.yaml", root / "digits", "train.log_every=5"),
        "cancer": _train("breast_cancer.yaml", root / "cancer"),
        "diabetes": _train("diabetes_regression.yaml", root / "diabetes"),
    }


def _facts(run: Path) -> PageFacts:
    return PageFacts((run / "report.html").read_text(encoding="utf-8"))


def test_training_writes_a_self_contained_report_and_its_plots(runs: dict[str, Path]) -> None:
    for run in runs.values():
        facts = _facts(run)
        assert "script" not in facts.tags and "link" not in facts.tags
        assert all(url.startswith(("data:image/png;base64,", "#")) for url in facts.urls)
        assert facts.images >= 4
        assert {"overview", "environment", "data", "curves"} <= set(facts.sections)
    training = json.loads((runs["digits"] / "eval.json").read_text())["training"]
    assert training["parameters"] > 0 and training["samples_per_second"] > 0
    assert {"python", "torch", "megalith", "device"} <= set(training)
    plots = {p.name for p in (runs["digits"] / "plots").iterdir()}
    assert {"loss.png", "loss-by-step.png", "metric-accuracy.png", "label-confusion.png"} <= plots
    assert {"label-roc.png", "label-precision-recall.png", "label-calibration.png"} <= plots


def test_classification_sections_and_no_regression_ones(runs: dict[str, Path]) -> None:
    for run, output in ((runs["digits"], "label"), (runs["cancer"], "diagnosis")):
        sections = _facts(run).sections
        assert f"classification-{output}" in sections
        assert not any(s.startswith("regression-") for s in sections)
    text = (runs["digits"] / "report.html").read_text()
    assert "Per-class precision, recall and F1" in text and "Class balance of label" in text
    assert "8 x 8 px" in text  # what the image preprocessing fitted
    assert 'class="thumb"' in text or "mistakes-label" not in _facts(runs["digits"]).sections


def test_regression_sections_and_no_classification_ones(runs: dict[str, Path]) -> None:
    facts = _facts(runs["diabetes"])
    assert "regression-progression" in facts.sections
    assert not any(s.startswith(("classification-", "mistakes-")) for s in facts.sections)
    text = (runs["diabetes"] / "report.html").read_text()
    assert "Class balance" not in text and "Per-class" not in text
    plots = {p.name for p in (runs["diabetes"] / "plots").iterdir()}
    assert {"progression-predicted-vs-true.png", "progression-residuals.png"} <= plots
    assert not any("confusion" in name for name in plots)


def test_report_verb_rewrites_the_report(cli: Cli, runs: dict[str, Path]) -> None:
    report = runs["cancer"] / "report.html"
    report.unlink()
    result = cli("report", runs["cancer"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert report.is_file() and "classification-diagnosis" in _facts(runs["cancer"]).sections
    with pytest.raises(RunError, match="run directory not found"):
        write_report(runs["cancer"] / "nope")


def test_compare_prints_a_table_and_writes_overlaid_curves(
    cli: Cli, runs: dict[str, Path], tmp_path: Path
) -> None:
    result = cli("compare", runs["digits"], runs["cancer"], "--output", "both.html")
    assert result.returncode == 0, result.stderr[-2000:]
    for text in ("digits", "cancer", "arch", "parameters", "test accuracy", "test auc"):
        assert text in result.stdout
    facts = PageFacts((tmp_path / "both.html").read_text())
    assert "script" not in facts.tags and facts.images >= 3
    assert all(url.startswith(("data:image/png;base64,", "#")) for url in facts.urls)
    assert set(facts.sections) == {"runs", "curves"}


def test_tensorboard_logging(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run = _train("breast_cancer.yaml", tmp_path / "tb", "train.log=[tensorboard]")
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_without_the_package_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match="tensorboard"):
        _train("breast_cancer.yaml", tmp_path / "tb", "train.log=[tensorboard]")
    assert not (tmp_path / "tb").exists()  # refused before anything was written


PAGE_FACTS = """({
  title: document.title,
  sections: [...document.querySelectorAll("section")].map(s => s.id),
  headings: [...document.querySelectorAll("h2")].map(h => h.textContent.trim()),
  images: document.images.length,
  broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
  width: document.documentElement.scrollWidth,
})"""


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"
)
def test_report_loads_in_headless_chromium_without_a_failed_request(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    page = load_page(runs["digits"] / "report.html", PAGE_FACTS)
    (tmp_path / "report.png").write_bytes(page.screenshot)  # kept by pytest for a look
    assert page.failed == [] and page.errors == []
    report_url = (runs["digits"] / "report.html").resolve().as_uri()
    assert page.requests[0] == report_url
    assert all(url.startswith("data:image/png;base64,") for url in page.requests[1:])
    facts = page.facts
    assert facts["title"].startswith("digits-cnn")
    # two epochs of the CNN trail logistic regression on the pixels: the page says so first
    scores = json.loads((runs["digits"] / "eval.json").read_text())
    assert [warning["kind"] for warning in scores["warnings"]] == ["below_linear"]
    assert facts["sections"] == [
        "warnings", "overview", "environment", "data", "curves", "classification-label",
        "mistakes-label",
    ]  # fmt: skip
    assert facts["headings"][1] == "Overview" and "Learning curves" in facts["headings"]
    assert facts["images"] >= 8 and facts["broken"] == 0
    assert facts["width"] <= 1280  # nothing overflows the page sideways
    assert page.screenshot.startswith(b"\x89PNG")
