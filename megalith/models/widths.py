"""The architecture record of a structurally pruned run: which layers are narrower than
config.yaml builds them, and how wide they are now (RUN/architecture.json).

Pruning (megalith.compress.prune) removes whole channels and neurons, so the run's model is no
longer the one its config describes. Rather than saving the module itself (which would need
pickle), the run keeps a small JSON record,

    {"format": 1, "modules": {"encoders.0.backbone.0": {"in_channels": 1, "out_channels": 16},
                              "encoders.0.backbone.1": {"num_features": 16}, ...}}

and `Run.load` builds the model from config.yaml, resizes the listed layers (`apply_widths`),
then loads model.safetensors, whose header shapes must then match. Only the size attributes of
the layer types below are recorded; every other setting (kernel, stride, bias) is the config's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from megalith.errors import RunError
from megalith.structured import parse_json

ARCHITECTURE_FILE = "architecture.json"
"""The record's name inside a run directory."""
FORMAT = 1
MAX_RECORD_BYTES = 10_000_000
"""A record larger than this (10 MB; a ResNet-50's is ~20 kB) is refused unread."""

_SIZES: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Linear: ("in_features", "out_features"),
    nn.Conv1d: ("in_channels", "out_channels"),
    nn.Conv2d: ("in_channels", "out_channels"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.LayerNorm: ("normalized_shape",),
}
"""The layer types a record may resize, and their size attributes."""


def _sizes_of(module: nn.Module) -> dict[str, Any] | None:
    keys = _SIZES.get(type(module))
    if keys is None:
        return None
    return {key: _plain(getattr(module, key)) for key in keys}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe_widths(model: nn.Module, reference: nn.Module) -> dict[str, Any]:
    """The record of `model`: each layer whose sizes differ from the same layer in
    `reference` (the model config.yaml builds), with its sizes in `model`.

    Raises:
        RunError: the two models do not have the same layers (a programming error upstream).
    """
    built = dict(reference.named_modules())
    modules: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        sizes = _sizes_of(module)
        if sizes is None:
            continue
        if name not in built or type(built[name]) is not type(module):
            raise RunError(f"the pruned model's layer '{name}' is not in the model config builds")
        if sizes != _sizes_of(built[name]):
            modules[name] = sizes
    return {"format": FORMAT, "modules": modules}


def read_widths(path: Path) -> dict[str, dict[str, Any]]:
    """The layers a record resizes, by module name, checked for shape but not yet against a model.

    Raises:
        RunError: the file is unreadable, too large, not JSON, or not a record of this format;
            the message names the file.
    """

    def damaged(why: str) -> RunError:
        return RunError(
            f"{path}: {why}; this run's pruned architecture cannot be rebuilt without it "
            "(copy the file back from where the run was made, or prune the source run again)"
        )

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
    except OSError as error:
        raise damaged(f"cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_RECORD_BYTES:
        raise damaged(f"larger than {MAX_RECORD_BYTES:,} bytes")
    try:
        record = parse_json(data.decode("utf-8"), str(path), RunError)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise damaged(f"not valid JSON ({error})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise damaged(f'not an architecture record (expected {{"format": {FORMAT}, ...}})')
    modules = record.get("modules")
    if not isinstance(modules, dict) or not all(
        isinstance(sizes, dict) for sizes in modules.values()
    ):
        raise damaged('"modules" must map layer names to their sizes')
    return modules


def apply_widths(model: nn.Module, path: Path) -> None:
    """Resize, in place, the layers the record at `path` lists; their new weights are empty
    (uninitialised) until the run's weights are loaded into them.

    Raises:
        RunError: a listed layer is not in the model, is not a type a record may resize, or
            has a size that is missing, not a positive whole number, or wider than config.yaml
            builds it; the message names the file and the layer.
    """
    layers = dict(model.named_modules())
    for name, sizes in read_widths(path).items():
        module = layers.get(name)
        built = _sizes_of(module) if module is not None else None
        if module is None or built is None:
            raise RunError(f"{path}: the layer '{name}' is not one the model in config.yaml has")
        if set(sizes) != set(built) or not all(_fits(sizes[key], built[key]) for key in built):
            raise RunError(
                f"{path}: the sizes of '{name}' ({sizes}) are not {'/'.join(built)} no larger "
                f"than config.yaml's ({built})"
            )
        _resize(module, sizes)


def _fits(value: Any, built: Any) -> bool:
    if isinstance(built, list):
        return (
            isinstance(value, list)
            and len(value) == len(built)
            and all(_fits(v, b) for v, b in zip(value, built, strict=True))
        )
    return type(value) is int and 0 < value <= built


def _resize(module: nn.Module, sizes: dict[str, Any]) -> None:
    """Set the size attributes and replace the weights with empty tensors of the new shapes."""
    for key, value in sizes.items():
        setattr(module, key, tuple(value) if isinstance(value, list) else value)
    if isinstance(module, nn.Linear):
        shapes = {
            "weight": (module.out_features, module.in_features),
            "bias": (module.out_features,),
        }
    elif isinstance(module, nn.Conv1d | nn.Conv2d):
        kernel = tuple(module.weight.shape[2:])
        inner = module.in_channels // module.groups
        shapes = {"weight": (module.out_channels, inner, *kernel), "bias": (module.out_channels,)}
    elif isinstance(module, nn.LayerNorm):
        shapes = {"weight": module.normalized_shape, "bias": module.normalized_shape}
    else:  # batch norm: its parameters and running statistics
        width = (getattr(module, "num_features"),)  # noqa: B009 - typed on the base class
        shapes = dict.fromkeys(("weight", "bias", "running_mean", "running_var"), width)
    for name, shape in shapes.items():
        current = getattr(module, name, None)
        if current is None:
            continue
        empty = torch.empty(shape, dtype=current.dtype)
        if isinstance(current, nn.Parameter):
            setattr(module, name, nn.Parameter(empty, requires_grad=current.requires_grad))
        else:
            module.register_buffer(name, empty)
