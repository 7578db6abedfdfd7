"""Hostile inputs that reach models and the server: remote code carried along in a model
folder, and image paths in a request that point outside `--allow-paths`.

Part of the hostile-input catalogue (see test_hostile_paths.py for the run directory, FIFOs
and symlink loops).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image
from pretrained_models import save_tiny_bert, topic_table
from rich.console import Console
from test_hostile_paths import hostile_cli

import megalith as mg
from megalith.serving import ServeSettings, build_app, load_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EVIL = "import pathlib\npathlib.Path(__file__).with_name('RAN').write_text('custom code ran')\n"
"""A custom tokenizer module: the file RAN beside it says that it was executed."""


def _carry_remote_code(folder: Path) -> None:
    """Make `folder` name a Python file for transformers to run with trust_remote_code."""
    (folder / "tokenization_evil.py").write_text(EVIL)
    for name, auto_map in [
        ("tokenizer_config.json", {"AutoTokenizer": ["tokenization_evil.Evil", None]}),
        ("config.json", {"AutoConfig": "tokenization_evil.Evil"}),
    ]:
        settings = json.loads((folder / name).read_text())
        settings["auto_map"] = auto_map
        (folder / name).write_text(json.dumps(settings))


def _names_custom_code(folder: Path) -> list[str]:
    found = []
    for path in folder.glob("*.json"):
        settings = json.loads(path.read_text())
        found += [
            f"{path.name}:{key}" for key in ("auto_map", "custom_pipelines") if key in settings
        ]
    return found + [p.name for p in folder.glob("*.py")]


def test_remote_code_is_never_carried_into_a_run_or_a_merged_model(tmp_path: Path) -> None:
    table = topic_table(60)
    table.to_csv(tmp_path / "topics.csv", index=False)
    base = save_tiny_bert(tmp_path / "bert", table.text)
    _carry_remote_code(base)
    config = {
        "data": {"source": str(tmp_path / "topics.csv")},
        "inputs": [{"name": "text", "type": "text"}],
        "outputs": [{"name": "topic", "type": "category"}],
        "model": {"arch": "pretrained", "path": str(base)},
        "train": {"epochs": 1, "batch_size": 16, "baselines": False},
    }
    said = io.StringIO()
    mg.train(config, output_dir=tmp_path / "run", console=Console(file=said, width=300))
    saved = tmp_path / "run" / "pretrained"
    assert _names_custom_code(saved) == []
    assert "note: removed auto_map from" in said.getvalue()

    _carry_remote_code(saved)  # a run directory someone else built
    result = hostile_cli("merge", "run", "merged", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: removed auto_map from" in result.stderr
    assert "tokenizer_config.json" in result.stderr and "config.json" in result.stderr
    merged = tmp_path / "merged"
    assert _names_custom_code(merged) == []
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(merged, trust_remote_code=True)  # what a downstream user does
    assert not list(tmp_path.rglob("RAN"))


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny image classifier in served/run; served/allowed holds images a request may name,
    served/outside a secret image it must not reach."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "allowed").mkdir()
    (folder / "outside").mkdir()
    rows = []
    for i in range(40):
        level = 220 if i % 2 else 30
        Image.fromarray(np.full((8, 8), level, np.uint8)).save(folder / "allowed" / f"{i}.png")
        rows.append({"picture": f"allowed/{i}.png", "kind": "bright" if i % 2 else "dark"})
    Image.fromarray(np.full((8, 8), 220, np.uint8)).save(folder / "outside" / "secret.png")
    pd.DataFrame(rows).to_csv(folder / "images.csv", index=False)
    config = {
        "data": {"source": "images.csv"},
        "inputs": [{"name": "picture", "type": "image", "size": [8, 8], "channels": 1}],
        "outputs": [{"name": "kind", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 1, "batch_size": 16, "baselines": False},
    }
    (folder / "cfg.yaml").write_text(yaml.safe_dump(config))
    mg.train(folder / "cfg.yaml", output_dir=folder / "run")
    return folder


def test_the_server_confines_image_paths_and_never_tells_what_exists_outside(
    image_run: Path,
) -> None:
    allowed, outside = image_run / "allowed", image_run / "outside"
    (allowed / "link.png").unlink(missing_ok=True)
    (allowed / "link.png").symlink_to(outside / "secret.png")
    (allowed / "loop.png").unlink(missing_ok=True)
    (allowed / "loop.png").symlink_to("loop.png")
    if not (allowed / "pipe.png").exists():
        os.mkfifo(allowed / "pipe.png")  # reading it would block the server forever
    backend = load_backend(image_run / "run", "torch")
    with TestClient(build_app(backend, ServeSettings(allow_paths=allowed))) as client:

        def detail(value: str) -> tuple[int, str]:
            answer = client.post("/predict", json={"rows": [{"picture": value}]})
            return answer.status_code, answer.text

        assert detail("1.png")[0] == 200
        missing = detail(str(outside / "missing.png"))
        assert missing[0] == 422 and "rows.0.picture" in missing[1]
        for value in [
            str(outside / "secret.png"),  # exists, outside: answered as if missing
            "../outside/secret.png",
            "../outside/missing.png",
            "link.png",  # inside, but a symlink leading out
            "loop.png",  # a symlink loop: no 500
            "pipe.png",  # a FIFO: refused without reading
            "/dev/zero",
        ]:
            assert detail(value) == missing, value
