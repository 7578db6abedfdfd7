"""Model folders that Megalith writes carry no reference to custom code.

A Hugging Face folder's JSON files may name Python files that ship beside the weights
(`auto_map` in config.json or tokenizer_config.json, `custom_pipelines`): whoever loads the
folder with `trust_remote_code=True` runs them. Megalith never runs such code, and the folders
it writes (RUN/pretrained, `megalith merge`) never pass a reference to it along.
"""

from __future__ import annotations

import json
from pathlib import Path

CUSTOM_CODE_KEYS = ("auto_map", "custom_pipelines")
"""Keys of a model folder's JSON files that name Python files: transformers runs those files
when the folder is loaded with `trust_remote_code=True`."""


def strip_custom_code(folder: Path) -> list[str]:
    """Remove CUSTOM_CODE_KEYS from the JSON files (config.json, tokenizer_config.json, ...)
    of a model folder Megalith wrote, so that nobody loading it runs code that came along.

    Returns:
        One notice per file changed, naming the file and the keys removed.
    Raises:
        OSError: a file cannot be rewritten.
    """
    notices = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue  # not a settings file (or not ours to judge): left as written
        found = [key for key in CUSTOM_CODE_KEYS if isinstance(data, dict) and key in data]
        if not found:
            continue
        for key in found:
            del data[key]
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        notices.append(
            f"removed {', '.join(found)} from {path}: it names Python files (custom code), "
            "which Megalith never carries along"
        )
    return notices
