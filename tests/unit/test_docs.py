"""The README and docs/ pages: every link resolves, and every config they show is valid."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

from megalith.config import validate_config

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")
_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)
_BASE: dict[str, Any] = {
    "data": {"source": "table.csv"},
    "inputs": [{"name": "x", "type": "number"}],
    "outputs": [{"name": "y", "type": "category"}],
}


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"(?m)^#+ (.+)$", page.read_text(encoding="utf-8"))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_pages_show_configs() -> None:
    blocks = [b for page in PAGES for b in _BLOCK.findall(page.read_text(encoding="utf-8"))]
    assert len(blocks) >= 3  # the config reference, text encoders, pretrained models


def test_the_docs_pages_exist_and_the_readme_links_each() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(PAGES) > 5
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"README does not link {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to {target} does not resolve"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: no heading for #{anchor}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_config_shown_is_valid(page: Path) -> None:
    for block in _BLOCK.findall(page.read_text(encoding="utf-8")):
        shown = yaml.safe_load(block)
        if not isinstance(shown, dict):
            continue
        # a fragment (inputs only, a model section) is checked inside a minimal config
        whole = ("outputs" in shown or "recommend" in shown) and "data" in shown
        config = shown if whole else {**_BASE, **shown}
        if config.get("model", {}).get("arch") in ("gpt",):
            config.setdefault("inputs", [])
        validate_config(config, origin=f"{page.name} yaml block")
