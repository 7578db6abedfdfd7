"""A pretrained model's files in its run directory: its config.json and tokenizer files (a
full fine-tune loads and merges from the run directory alone) and a LoRA run's adapter in peft's
own format. Each folder is written whole or not at all."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megalith.models.pretrained import quiet_transformers
from megalith.models.remote_code import strip_custom_code
from megalith.paths import remove_path

if TYPE_CHECKING:
    from megalith.models.pretrained import PretrainedModel


def save_architecture(model: PretrainedModel, tokenizer_source: str, folder: Path) -> list[str]:
    """The model's config.json and its tokenizer's files, so that a full fine-tune loads and
    merges from its run directory alone; any reference to custom code is left out. Returns
    a notice per file such a reference was removed from (see `strip_custom_code`)."""
    tokenizer = quiet_transformers().AutoTokenizer.from_pretrained(tokenizer_source)
    net: Any = model.net
    settings = net.config  # a LoRA model's is its base model's
    notices: list[str] = []

    def write(tmp: Path) -> None:
        settings.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        notices.extend(strip_custom_code(tmp))

    _write_folder(folder, write)
    return notices


def save_adapter(model: PretrainedModel, folder: Path) -> None:
    """A LoRA run's adapter in peft's own format (adapter_config.json and safetensors)."""
    net: Any = model.net
    _write_folder(folder, lambda tmp: net.save_pretrained(str(tmp)))


def _write_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """`write` fills a temporary folder, which then replaces `folder`: never half a folder."""
    tmp = folder.with_name(folder.name + ".tmp")
    remove_path(tmp)  # a link is removed, never written through
    try:
        write(tmp)
        remove_path(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
