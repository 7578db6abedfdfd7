"""Model families register a builder under their `model.arch` name; `build_model` looks it up.

A builder turns a family's config and the input / output specs into an `nn.Module` whose
forward takes `dict[str, Tensor]` (inputs by name) and returns `dict[str, Tensor]` (outputs
by name), following the tensor contract in `megalith.data.specs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError, did_you_mean

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

    Raises:
        ConfigError: the architecture is unknown, or the family cannot handle these inputs.
    """
    builder = _BUILDERS.get(config.arch)
    if builder is None:
        known = known_archs()
        raise ConfigError(
            f"model.arch: unknown architecture '{config.arch}'"
            f"{did_you_mean(config.arch, known)}; known: {', '.join(known)}"
        )
    return builder(config, inputs, outputs)
