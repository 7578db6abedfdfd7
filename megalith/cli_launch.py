"""`megalith train --devices N` (or --max-restarts): the config checked once, then the same
command started on N processes by torchrun (training/distributed.launch)."""

from __future__ import annotations

from pathlib import Path


def launch_training(
    config: Path | None,
    *,
    output_dir: Path | None,
    overrides: list[str],
    resume: Path | None,
    overwrite: bool,
    teacher: Path | None,
    devices: int,
    max_restarts: int,
    debug: bool,
) -> int:
    """Run `megalith train` with these options on `devices` processes; their exit code.

    Raises:
        ConfigError: the config is invalid or asks what private training refuses (said once
            here, not once per process after they start).
    """
    from megalith.training.distributed import launch

    if config is not None:
        _check_before_launch(config, overrides, devices, teacher is not None)
    argv = ["--debug"] if debug else []
    argv += ["train", *([str(config)] if config else [])]
    argv += ["--output-dir", str(output_dir)] if output_dir else []
    argv += [arg for value in overrides for arg in ("--set", value)]
    argv += ["--resume", str(resume)] if resume else []
    argv += ["--overwrite"] if overwrite else []
    argv += ["--teacher", str(teacher)] if teacher else []
    return launch(devices, argv, max_restarts)


def _check_before_launch(config: Path, overrides: list[str], devices: int, teacher: bool) -> None:
    """The config read and validated, and what private training refuses on `devices`
    processes, before torchrun starts them (each would say the same error once).

    Raises:
        ConfigError: naming the key.
    """
    from megalith.config import load_config
    from megalith.training.private_checks import check_private_training

    cfg, _ = load_config(config, overrides)
    check_private_training(
        cfg.train.privacy,
        cfg.train.clip_grad_norm,
        cfg.train.precision,
        cfg.train.compile,
        [feature.type for feature in cfg.outputs],
        teacher or bool(cfg.teacher),
        sharded=devices > 1 and cfg.train.strategy == "fsdp",
    )
