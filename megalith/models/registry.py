"""Model families register a builder under their `model.arch` name; `build_model` looks it up.

A builder turns a family's config and the input / output specs into an `nn.Module` whose
forward takes `dict[str, Tensor]` (inputs by name) and returns `dict[str, Tensor]` (outputs
by name), following the tensor contract in `megalith.data.specs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError, did_you_mean
from megalith.memory import available_bytes, format_bytes

ModelBuilder = Callable[[Any, Sequence[InputSpec], Sequence[OutputSpec]], nn.Module]
"""(config, inputs, outputs) -> model. `Any` because each family takes its own config class."""

BuilderT = TypeVar("BuilderT", bound=ModelBuilder)

_BUILDERS: dict[str, ModelBuilder] = {}


class ArchConfig(Protocol):
    """Any model config: all that the registry needs is its `arch` name."""

    @property
    def arch(self) -> str: ...


def register_model(arch: str) -> Callable[[BuilderT], BuilderT]:
    """Register the decorated function as the builder of `model.arch: <arch>`.

    Raises:
        ValueError: another builder is already registered under `arch` (a programming error).
    """

    def decorate(builder: BuilderT) -> BuilderT:
        if arch in _BUILDERS:
            raise ValueError(f"a model builder is already registered for arch '{arch}'")
        _BUILDERS[arch] = builder
        return builder

    return decorate


def known_archs() -> list[str]:
    """The registered architecture names, sorted."""
    return sorted(_BUILDERS)


def build_model(
    config: ArchConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> nn.Module:
    """Build the model that `config.arch` names for these inputs and outputs.

    The model is first built on PyTorch's meta device (shapes, no memory) to count its
    weights; one that cannot fit in the memory left is refused before anything is allocated.

    Raises:
        ConfigError: the architecture is unknown, the family cannot handle these inputs, or
            the model's weights need more memory than there is.
    """
    builder = _BUILDERS.get(config.arch)
    if builder is None:
        known = known_archs()
        raise ConfigError(
            f"model.arch: unknown architecture '{config.arch}'"
            f"{did_you_mean(config.arch, known)}; known: {', '.join(known)}"
        )
    if config.arch not in _SIZED_BY_FILES:
        with torch.device("meta"):
            sizes = [
                (p.numel(), p.element_size()) for p in _tensors(builder(config, inputs, outputs))
            ]
        _check_fits(config, sum(n for n, _ in sizes), sum(n * size for n, size in sizes))
    try:
        return builder(config, inputs, outputs)
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "allocate" not in str(error):
            raise
        raise ConfigError(
            f"{_described(config)}: ran out of memory while building the model "
            f"({format_bytes(available_bytes())} available); make the model smaller"
        ) from None


_SIZED_BY_FILES = ("pretrained",)
"""Families whose weights come from a model folder on disk, sized by its files."""


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


def _check_fits(config: ArchConfig, count: int, needed: int) -> None:
    available = available_bytes()
    if needed > available:
        raise ConfigError(
            f"{_described(config)}: the model has {count:,} parameters, "
            f"{format_bytes(needed)} of weights (training needs about 4 times that), but "
            f"{format_bytes(available)} of memory is available; make the model smaller"
        )


def _described(config: ArchConfig) -> str:
    """'model (arch mlp, hidden [1000000, 1000000])': the settings that differ from defaults."""
    dump = getattr(config, "model_dump", None)
    settings = dump(exclude_defaults=True, exclude={"arch"}) if dump is not None else {}
    shown = "".join(f", {key} {value}" for key, value in settings.items())
    return f"model (arch {config.arch}{shown})"[:200]
