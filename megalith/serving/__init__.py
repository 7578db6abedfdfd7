"""`megalith serve`: a run or an exported bundle behind HTTP, with dynamic batching.

    import megalith as mg
    mg.serve("runs/digits", port=8000)            # blocks; Ctrl-C or SIGTERM stops it

FastAPI + uvicorn. Binds 127.0.0.1 unless told otherwise; any other host needs a token.
(The package is `serving`, not `serve`, so that importing it never hides the function
`megalith.serve` behind a module of the same name.)
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from megalith.errors import ConfigError
from megalith.paths import check_readable
from megalith.serving.backend import Backend, BackendName, load_backend
from megalith.serving.batcher import DynamicBatcher

__all__ = [
    "Backend",
    "DynamicBatcher",
    "ServeSettings",
    "build_app",
    "build_server",
    "load_backend",
    "serve",
]

TOKEN_ENV = "MEGALITH_SERVE_TOKEN"


def __getattr__(name: str) -> Any:  # fastapi loads only when an app is built
    if name in ("ServeSettings", "build_app"):
        from megalith.serving import app

        return getattr(app, name)
    raise AttributeError(f"module 'megalith.serving' has no attribute '{name}'")


def serve(
    source: str | Path | Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: BackendName = "auto",
    token: str | None = None,
    threads: int | None = None,
    **settings: Any,
) -> None:
    """Serve a run directory or a bundle until SIGTERM / Ctrl-C (in-flight requests finish).

    Args:
        source: a run directory (PyTorch, or its RUN/bundle with ONNX Runtime), a bundle, or
            a loaded `Run` (`mg.serve(mg.load("runs/x"))`).
        host: the address to bind; anything but loopback requires `token`.
        port: the TCP port.
        backend: auto (ONNX Runtime when a bundle exists), onnx or torch.
        token: bearer token every request must carry (default: $MEGALITH_SERVE_TOKEN).
        threads: the model's intra-op threads (default: one fewer than the cores, at least
            one: the event loop, JSON and image decoding need a core, and a small model's
            forward pass gains nothing from threads that wait on each other).
        settings: `ServeSettings` fields (max_batch_size, max_wait_ms, batching, max_body_bytes,
            max_rows, timeout_s, max_queue, allow_paths).
    Raises:
        ConfigError: a non-loopback host without a token, or a bad setting.
        RunError: the source cannot be served by that backend.
    """
    import uvicorn

    from megalith.serving.app import ServeSettings

    token = token or os.environ.get(TOKEN_ENV) or None
    check_host(host, token)
    check_port_free(host, port)  # before minutes of loading, not after
    allow = settings.pop("allow_paths", None)
    if allow is not None:
        check_readable(allow, "--allow-paths", kind="folder", error=ConfigError)
    options = ServeSettings(
        token=token, allow_paths=Path(allow) if allow is not None else None, **settings
    )
    threads = threads or max(1, (os.cpu_count() or 2) - 1)
    recommender = _recommender_run(source)
    if recommender is not None:  # top-k lists: POST /recommend
        from megalith.serving.recommend_app import build_recommend_app

        answers, name = recommender
        app = build_recommend_app(answers, options, name)
    else:
        loaded = load_backend(source, backend, threads=threads)
        if loaded.name == "torch":
            import torch

            torch.set_num_threads(threads)
        app = build_server(loaded, options)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=True,  # method, path and status only: never a body
        timeout_graceful_shutdown=int(options.timeout_s) + 5,
        limit_concurrency=options.max_queue + 64,
    )


def build_server(backend: Backend, settings: Any) -> Any:
    """The app for `backend`: POST /transcribe for a speech recognizer (model.arch asr,
    megalith.serving.transcribe_app), else /predict or /generate (megalith.serving.app)."""
    if backend.speech:
        from megalith.serving.transcribe_app import build_transcribe_app

        recognizer: Any = backend.predictor  # a Run or a Bundle: both transcribe
        if backend.name == "torch":  # its model.lm is read now: missing, it stops serve here
            from megalith.transcribe.transcriber import check_language_model

            check_language_model(
                recognizer.config.model,
                recognizer.preprocessor,
                recognizer._language_model_run,  # kept: requests fuse the GPT read here
            )
        return build_transcribe_app(recognizer, settings, backend.metadata())
    from megalith.serving.app import build_app

    return build_app(backend, settings)


def _recommender_run(source: str | Path | Any) -> tuple[Any, str] | None:
    """(what answers, its backend) when `source` is a recommender run (directory or loaded:
    torch) or an exported recommender bundle (numpy; onnxruntime for ncf), else None."""
    from megalith.recommend.run import RecommenderRun
    from megalith.runtime.recommender import is_recommender_bundle, load_recommender_bundle

    if isinstance(source, RecommenderRun):
        return source, "torch"
    if not isinstance(source, str | Path):
        return None
    if is_recommender_bundle(source):
        bundle = load_recommender_bundle(source)
        return bundle, bundle.backend
    if not (Path(source) / "config.yaml").is_file():
        return None
    from megalith.config import load_config

    config, _ = load_config(Path(source) / "config.yaml")
    if config.recommend is None:
        return None
    from megalith.loading import load

    return load(source), "torch"


def check_port_free(host: str, port: int) -> None:
    """Raises ConfigError when `host:port` cannot be bound (in use, or not this machine's)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({error.strerror or error}); choose another "
                "--port, or stop what is using it"
            ) from None


def check_host(host: str, token: str | None) -> None:
    """Refuse to bind anything but loopback without a token.

    Raises:
        ConfigError: naming the host and how to set a token.
    """
    if host in ("localhost", "127.0.0.1", "::1"):
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not token:
        raise ConfigError(
            f"--host {host} would accept requests from other machines: give --token TOKEN "
            f"(or set {TOKEN_ENV}) so that every request must carry it"
        )
