"""Pretrained Hugging Face models read from a local directory, fine-tuned fully or with LoRA.

    text ids (B, L), 0 = padding ─► model ids + attention mask ─► AutoModelForSequenceClassification
                                                              ─► logits of the one output
    corpus windows (B, T)       ─► AutoModelForCausalLM ─► next-token logits (B, T, V + 1)

Text features of such a model use the directory's own tokenizer, its ids moved up by one so that
0 means padding everywhere in Megalith (see megalith.data.tokenizers); this module moves them
back. Only safetensors weights are read, no code from the directory is run, nothing is
downloaded.

With `lora`, the pretrained weights stay frozen and `peft` adds low-rank adapters (plus a new
classification head): `model.safetensors` and the checkpoints then hold only those trained
tensors, `adapter/` in the run directory is the adapter in peft's own format, and
`megalith merge` writes the base model with the adapter merged in.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models.registry import register_model
from megalith.paths import check_folder_for_reading, check_readable

LONGEST_CONTEXT = 1024
"""A language model's default window: the model's positions, at most this many tokens."""


class LoRAConfig(ConfigModel):
    """Low-rank adapters (LoRA, through peft) instead of training every pretrained weight."""

    rank: int = Field(8, gt=0)
    """Rank r of each adapter: it adds r * (fan_in + fan_out) parameters per adapted matrix."""
    alpha: int = Field(16, gt=0)
    """Scale: the adapter's update is multiplied by alpha / rank."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the adapter's input."""
    target_modules: list[str] | Literal["all-linear"] | None = None
    """Names of the modules to adapt (e.g. [query, value], [q_proj, v_proj]) or all-linear;
    by default peft's choice for the model type (the attention projections)."""


class PretrainedConfig(ConfigModel):
    """A Hugging Face model from a local directory: a text classifier (or regressor) when the
    config has one text input and one category, binary or number output; a causal language model
    when it has no inputs and one text output."""

    arch: Literal["pretrained"] = "pretrained"
    path: str
    """The model directory (config.json, safetensors weights, tokenizer), as save_pretrained
    writes it; relative to the config file."""
    lora: LoRAConfig | None = None
    """Fine-tune with LoRA adapters (`lora: {}` for the defaults); none trains every weight."""
    context: int | None = Field(None, gt=1)
    """Language models: tokens per training window; by default the model's positions, at most
    1,024."""


def quiet_transformers() -> ModuleType:
    """Import transformers without its progress bars and load reports, and never online: a
    model directory here is always local."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import transformers
    except ImportError:
        raise ConfigError(
            "model.arch pretrained needs transformers and peft: pip install 'megalith[pretrained]'"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def language_model_context(config: PretrainedConfig, positions: int | None) -> int:
    """The window length: `context`, or the model's positions capped at LONGEST_CONTEXT."""
    if config.context is not None:
        if positions is not None and config.context > positions:
            raise ConfigError(
                f"model.context: {config.context} tokens, but the model in {config.path} has "
                f"{positions} positions"
            )
        return config.context
    return min(positions or LONGEST_CONTEXT, LONGEST_CONTEXT)


class PretrainedModel(nn.Module):
    """forward({name: ids}) -> {output: logits}; `decode` (language models) adds a KV cache.

    `state_dict` holds what this run trained: every weight (one name per shared tensor), or with
    LoRA only the adapters and the new head; loading accepts exactly that.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        task: Literal["classify", "language_model"],
        input_name: str,
        output: OutputSpec,
        pad_id: int,
        context: int,
        lora: bool,
    ) -> None:
        super().__init__()
        self.net = net
        self.task = task
        self.input_name, self.name, self.output_type = input_name, output.name, output.type
        self.pad_id, self.context, self.lora = pad_id, context, lora
        self._recompute = False
        kept = self._kept_names()
        self._left_out = {name for name in super().state_dict() if name not in kept}
        self.register_state_dict_post_hook(_leave_out_untrained)
        self.register_load_state_dict_post_hook(_accept_untrained_missing)

    def _kept_names(self) -> set[str]:
        """The tensors to save: trainable ones with LoRA, else one name per storage."""
        if self.lora:
            return {name for name, p in self.named_parameters() if p.requires_grad}
        kept: dict[int, str] = {}
        for name, tensor in super().state_dict(keep_vars=True).items():
            kept.setdefault(tensor.data_ptr(), name)
        return set(kept.values())

    def model_ids(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Megalith ids (0 = padding) -> the model's ids (padding = its pad id) and the mask."""
        real = ids != 0
        return torch.where(real, ids - 1, self.pad_id), real

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.task == "language_model":
            logits, _ = self._next_token_logits(inputs[self.name], None, use_cache=False)
            return {self.name: logits}
        ids, real = self.model_ids(inputs[self.input_name])
        logits = self.net(input_ids=ids, attention_mask=real.long()).logits  # (B, labels)
        if self.output_type != "category":
            logits = logits.squeeze(-1)  # binary logit or number (B,)
        return {self.name: logits}

    def decode(
        self, tokens: torch.Tensor, caches: Any = None, start: int = 0
    ) -> tuple[torch.Tensor, Any]:
        """tokens (B, T) -> logits (B, T, V + 1) over Megalith ids and the model's KV cache.

        With `caches` (from the previous call) the tokens continue that sequence; `start` is
        implied by the cache. Id 0 (padding) gets the lowest logit, so it is never predicted.
        """
        del start
        return self._next_token_logits(tokens, caches, use_cache=True)

    def _next_token_logits(
        self, tokens: torch.Tensor, caches: Any, *, use_cache: bool
    ) -> tuple[torch.Tensor, Any]:
        ids, _ = self.model_ids(tokens)  # right padding after causal attention changes nothing
        base = getattr(self.net, "get_base_model", None)  # peft's forward passes **kwargs on
        forward = base().forward if base is not None else self.net.forward
        params = inspect.signature(forward).parameters  # transformers 5 renamed it
        key = "cache" if "cache" in params else "past_key_values"
        given = {} if caches is None else {key: caches}
        out = self.net(input_ids=ids, use_cache=use_cache, **given)
        logits = out.logits
        return F.pad(logits, (1, 0), value=torch.finfo(logits.dtype).min), out.get(key)

    @property
    def recompute(self) -> bool:
        """Activation checkpointing (`train.activation_checkpointing`) through transformers."""
        return self._recompute

    @recompute.setter
    def recompute(self, on: bool) -> None:
        if on == self._recompute:
            return
        if not getattr(self.net, "supports_gradient_checkpointing", False):
            raise ConfigError(
                "train.activation_checkpointing: this pretrained model does not support it"
            )
        net: Any = self.net  # transformers >= 5 renames gradient_ to activation_checkpointing_
        if on:
            enable = getattr(net, "activation_checkpointing_enable", None)
            enable = enable or net.gradient_checkpointing_enable
            enable({"use_reentrant": False})  # the kwargs, first under either name
        else:
            disable = getattr(net, "activation_checkpointing_disable", None)
            (disable or net.gradient_checkpointing_disable)()
        self._recompute = on

    def merged(self) -> Any:
        """The fine-tuned transformers model on its own, LoRA adapters merged into a copy."""
        net: Any = copy.deepcopy(self.net)
        return net.merge_and_unload() if self.lora else net


def _leave_out_untrained(
    module: nn.Module, state: dict[str, Any], prefix: str, metadata: Any
) -> None:
    assert isinstance(module, PretrainedModel)
    for name in module._left_out:
        state.pop(prefix + name, None)


def _accept_untrained_missing(module: nn.Module, incompatible: Any) -> None:
    assert isinstance(module, PretrainedModel)
    left_out = module._left_out
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if k not in left_out]


def check_model_dir(path: str) -> Path:
    """The directory, when it holds a config and safetensors weights; a ConfigError if not."""
    folder = Path(path)
    if not folder.is_dir():
        if os.path.lexists(folder):  # a symlink loop, a pipe or an unreadable folder: say so
            check_readable(folder, "model.path", error=ConfigError)
        raise ConfigError(
            f"model.path: {path} is not a directory; give a local Hugging Face model directory "
            "(what save_pretrained writes)"
        )
    check_folder_for_reading(folder, "model.path", error=ConfigError)  # what transformers reads
    if not (folder / "config.json").is_file():
        raise ConfigError(f"model.path: {path} has no config.json; is it a model directory?")
    if not any(folder.glob("*.safetensors")):
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = (
            f" It holds {', '.join(sorted(pickled))}, pickle files Megalith never loads; convert "
            "them with transformers: model.save_pretrained(DIR, safe_serialization=True)."
            if pickled
            else ""
        )
        raise ConfigError(f"model.path: {path} has no safetensors weights.{hint}")
    return folder


ARCHITECTURE_DIR = "pretrained"
"""The run directory's folder holding the model's config.json and tokenizer files."""


def _load(
    config: PretrainedConfig,
    task: Literal["classify", "language_model"],
    num_labels: int,
    architecture: Path | None = None,
) -> Any:
    transformers = quiet_transformers()
    if architecture is not None:  # the run's own weights follow: build the layers only
        settings = transformers.AutoConfig.from_pretrained(architecture, trust_remote_code=False)
        kind = (
            transformers.AutoModelForCausalLM
            if task == "language_model"
            else transformers.AutoModelForSequenceClassification
        )
        return kind.from_config(settings).float()
    check_model_dir(config.path)
    try:
        if task == "language_model":
            net = transformers.AutoModelForCausalLM.from_pretrained(
                config.path, use_safetensors=True, trust_remote_code=False
            )
        else:
            net = transformers.AutoModelForSequenceClassification.from_pretrained(
                config.path,
                num_labels=num_labels,
                ignore_mismatched_sizes=True,  # a new head for this table's classes
                use_safetensors=True,
                trust_remote_code=False,
            )
    except (OSError, ValueError, KeyError) as error:
        what = "causal language model" if task == "language_model" else "sequence classifier"
        raise ConfigError(
            f"model.path: cannot load {config.path} as a {what}: {str(error).splitlines()[0]}"
        ) from None
    return net.float()  # fp32 weights; train.precision decides the compute type


_PEFT_NOTES = (
    "fan_in_fan_out is set to False but the target module is `Conv1D`",  # GPT-2: peft fixes it
    "`is_gradient_checkpointing` is deprecated",  # peft asks transformers 5 the old name
)
"""Warnings peft raises while adding adapters that say nothing to the user (matched from the
start of the message): `train`, `generate`, `explain` and `predict` printed them every time."""


def _with_lora(net: Any, lora: LoRAConfig, task: str) -> Any:
    try:
        import peft
    except ImportError:
        raise ConfigError("model.lora needs peft: pip install 'megalith[pretrained]'") from None
    settings = peft.LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM" if task == "language_model" else "SEQ_CLS",
    )
    try:
        with warnings.catch_warnings():  # peft's notes to itself, printed on every load
            for note in _PEFT_NOTES:
                warnings.filterwarnings("ignore", message=note)
            return peft.get_peft_model(net, settings)
    except ValueError as error:
        model_type = getattr(getattr(net, "config", None), "model_type", "?")
        raise ConfigError(
            f"model.lora.target_modules: {str(error).splitlines()[0]} (model type {model_type}; "
            "name the modules to adapt, e.g. [q_proj, v_proj], or all-linear)"
        ) from None


def _first(value: int | list[int] | None) -> int | None:
    """A token id setting, which some configs give as a list."""
    return value[0] if isinstance(value, list) else value


@register_model("pretrained")
def build_pretrained(
    config: PretrainedConfig,
    inputs: Sequence[InputSpec],
    outputs: Sequence[OutputSpec],
    architecture: Path | None = None,
) -> PretrainedModel:
    """The model in `config.path` with a head for the one output, or as a language model.

    With `architecture` (a run's ARCHITECTURE_DIR), a full fine-tune is built from the config
    saved there, without reading `config.path`: the run's weights replace every tensor anyway.
    """
    if len(outputs) != 1:
        raise ConfigError("model.arch pretrained takes exactly one output")
    output = outputs[0]
    if output.type == "text":
        if inputs:
            raise ConfigError("a pretrained language model takes `inputs: []`")
        task: Literal["classify", "language_model"] = "language_model"
        input_name = output.name
    else:
        if len(inputs) != 1 or inputs[0].type != "text":
            raise ConfigError("a pretrained classifier reads exactly one text input")
        task, input_name = "classify", inputs[0].name
    labels = output.num_classes if output.type == "category" else 1
    net = _load(config, task, labels, architecture if config.lora is None else None)
    settings = net.config
    positions = getattr(settings, "max_position_embeddings", None) or getattr(
        settings, "n_positions", None
    )
    if task == "classify" and positions is not None and inputs[0].shape[0] > positions:
        raise ConfigError(
            f"inputs.{input_name}: {inputs[0].shape[0]} tokens per row, but the model has "
            f"{positions} positions; set max_length at most {positions}"
        )
    pad_id = _first(settings.pad_token_id)
    if pad_id is None:  # decoder-only models often have none: pad with the end token
        pad_id = _first(settings.eos_token_id)
        pad_id = 0 if pad_id is None else pad_id
        settings.pad_token_id = pad_id  # where a classifier looks for each row's last token
    if config.lora is not None:
        net = _with_lora(net, config.lora, task)
    return PretrainedModel(
        net,
        task=task,
        input_name=input_name,
        output=output,
        pad_id=int(pad_id),
        context=language_model_context(config, positions),
        lora=config.lora is not None,
    )
