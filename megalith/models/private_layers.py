"""Models made fit for per-sample gradients (DP-SGD): Opacus's ModuleValidator fixes and checks.

A layer that mixes rows within a batch (BatchNorm) breaks the per-row guarantee; Opacus's
fixers replace it with GroupNorm, and nn.LSTM / nn.GRU / nn.MultiheadAttention with its DP
variants (DPLSTM, DPGRU, DPMultiheadAttention), which compute the same function with layers
whose per-sample gradients Opacus knows. The same replacement runs when a private run is
loaded, so its weights fit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import nn

from megalith.errors import ConfigError


def make_private_safe(model: nn.Module, notice: Callable[[str], None] | None = None) -> nn.Module:
    """The model with every layer Opacus can fix replaced; unfixable layers refused.

    Args:
        model: a built model (any family).
        notice: called with one line per kind of layer replaced (e.g. the console's print).
    Returns:
        a copy of `model` with BatchNorm -> GroupNorm, LSTM/GRU -> DPLSTM/DPGRU,
        MultiheadAttention -> DPMultiheadAttention; `model` itself when nothing was replaced.
    Raises:
        ConfigError: a layer has no private-safe equivalent, naming it and its type.
    """
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    before = _layer_types(model)
    if ModuleValidator.validate(model, strict=False):
        model = ModuleValidator.fix(_feature_norms_to_group_norm(copy.deepcopy(model)))
    after = _layer_types(model)
    if notice is not None:
        for name, kind in sorted(before.items()):
            if after.get(name) != kind:
                notice(f"train.privacy: layer {name} ({kind}) replaced by {after.get(name)}")
    errors = [str(error) for error in ModuleValidator.validate(model, strict=False)]
    errors += [
        f"layer {name} ({type(module).__name__}) has trainable weights and buffers, which "
        "Opacus cannot compute per-sample gradients for"
        for name, module in trainable_modules(model)
        if any(True for _ in module.buffers())
    ]
    _without_aliases(model)
    if errors:
        raise ConfigError(
            "train.privacy: this model has layers that DP-SGD cannot train privately: "
            + "; ".join(errors)
            + "; choose another model.arch or encoder, or turn train.privacy off"
        )
    return model


def _without_aliases(model: nn.Module) -> None:
    """DPLSTM / DPGRU hold each weight under two names, nn.LSTM's (`weight_ih_l0`) and their
    cells' (`l0.ih.weight`): the state dict lists both, sharing memory, which safetensors refuses
    to save. Opacus's hook that drops the cells' names only works on the root module (below it,
    its new dict is ignored, and hides the real one from later hooks), so it is replaced: drop
    them from every state dict, and when loading fill them in from nn.LSTM's names."""
    from opacus.layers.param_rename import RenameParamsMixin, filter_out_old_keys

    for module in model.modules():
        if isinstance(module, RenameParamsMixin) and not getattr(module, "_megalith_unaliased", 0):
            hooks = module._state_dict_hooks
            for key in [key for key, hook in hooks.items() if hook is filter_out_old_keys]:
                del hooks[key]
            module.register_state_dict_post_hook(_drop_cell_names)
            module._register_load_state_dict_pre_hook(_add_cell_names, with_module=True)
            module._megalith_unaliased = True


def _drop_cell_names(module: Any, state: dict[str, Any], prefix: str, *_: Any) -> None:
    for cell_name in module.old_to_new:
        state.pop(prefix + cell_name, None)


def _add_cell_names(module: Any, state: dict[str, Any], prefix: str, *_: Any) -> None:
    for cell_name, lstm_name in module.old_to_new.items():
        if prefix + lstm_name in state:
            state.setdefault(prefix + cell_name, state[prefix + lstm_name])


def _feature_norms_to_group_norm(model: nn.Module) -> nn.Module:
    """BatchNorm1d -> GroupNorm(1, C), in place. Opacus's fixer makes min(32, C) groups, which on
    (B, C) features (no length) normalises every value alone to zero: an MLP would learn nothing.
    One group normalises each row over its features, like LayerNorm, with per-feature affine."""
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.BatchNorm1d):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            norm = nn.GroupNorm(1, module.num_features, eps=module.eps, affine=module.affine)
            setattr(parent, name.rpartition(".")[2], norm)
    return model


def _layer_types(model: nn.Module) -> dict[str, str]:
    return {name or "model": type(module).__name__ for name, module in model.named_modules()}
