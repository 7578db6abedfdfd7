"""The HTTP app of a recommender run: POST /recommend, /health, /metadata.

The same safe defaults as the predict server (bearer token, body size limit, a limit on users
per request, a time limit per request); a malformed request gets a 422 naming the field, an
unknown user gets the most popular items with `known_user: false`, never a 500; a new user whose
features come with the request (`user_features`) gets the user tower's answer, `cold_start: true`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)
from starlette.concurrency import run_in_threadpool

from megalith.errors import DataError
from megalith.serving.app import ServeSettings, _bearer, _BodyLimit, _validation_error


class Recommends(Protocol):
    """A recommender run (PyTorch) or an exported recommender bundle (numpy)."""

    user_ids: list[str]
    item_ids: list[str]

    def recommend(
        self, users: Sequence[str | int] | str | int, k: int = 10, *, exclude_seen: bool = True
    ) -> pd.DataFrame: ...


MAX_K = 1000
"""The most items one user's list may hold in one request."""
UserId = StrictStr | StrictInt
"""A user id as text or a whole number; `true` or `1.0` is refused, not read as user "1"."""


def recommend_request(max_users: int) -> type[BaseModel]:
    """The body of POST /recommend: users (1..max_users ids), k, exclude_seen."""
    return create_model(
        "RecommendRequest",
        __config__=ConfigDict(extra="forbid"),
        users=(
            list[UserId],
            Field(min_length=1, max_length=max_users, description="user ids as in the data"),
        ),
        k=(StrictInt, Field(10, ge=1, le=MAX_K, description="items per user")),
        exclude_seen=(StrictBool, Field(True, description="leave out the user's known items")),
        user_features=(
            dict[StrictStr, dict[StrictStr, StrictStr | StrictInt | StrictFloat | None]] | None,
            Field(
                None,
                max_length=max_users,
                description="new users' features, {user id: {column: value}}: a two_tower with "
                "user features answers them from these (cold start)",
            ),
        ),
    )


def _features_frame(run: Recommends, features: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The request's `user_features` as the table `RecommenderRun.recommend` reads.

    Raises:
        HTTPException: 422 when the model reads no user features (or is an exported bundle).
    """
    column = getattr(run, "user_column", None)
    if column is None or not getattr(run, "reads_user_features", False):
        raise HTTPException(
            422,
            "user_features: this server's model reads no user features (a two_tower trained "
            "with recommend.user_features, served from its run directory, does)",
        )
    names = getattr(run, "user_feature_columns", [])
    for user, values in features.items():
        absent = [name for name in names if name not in values]
        if absent:  # one user's missing key would be another's empty cell: say so instead
            raise HTTPException(
                422,
                f"user_features.{user}: no {', '.join(map(repr, absent))}; give every column "
                f"of the run's user features ({', '.join(names)}), null when unknown",
            )
    frame = pd.DataFrame(
        [{**values, column: user} for user, values in features.items()],
        columns=list(dict.fromkeys([column, *names])) if not features else None,
    )
    frame.index = pd.Index(list(features), dtype=object)  # errors name the user, not a row
    return frame


def build_recommend_app(run: Recommends, settings: ServeSettings, backend: str) -> FastAPI:
    """A FastAPI app answering top-k lists from `run` (a recommender run, `backend` torch, or
    an exported bundle, numpy) with `settings`' limits."""
    app = FastAPI(
        title="Megalith recommender server", dependencies=[Depends(_bearer(settings.token))]
    )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    request_model = recommend_request(settings.max_rows)
    known = set(run.user_ids)
    metadata = {
        "task": "recommend",
        "backend": backend,
        "users": len(run.user_ids),
        "items": len(run.item_ids),
        "max_users": settings.max_rows,
        "max_k": MAX_K,
        # the keys each new user's `user_features` must hold (empty: none are read)
        "user_features": list(getattr(run, "user_feature_columns", [])),
    }

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "backend": backend}

    @app.get("/metadata")
    async def describe() -> dict[str, Any]:
        return metadata

    async def recommend(body: request_model) -> JSONResponse:  # type: ignore[valid-type]
        request: Any = body
        users = list(dict.fromkeys(str(user) for user in request.users))  # 1 and "1": one
        if any(len(user) > 256 for user in users):
            raise HTTPException(422, "users: an id is longer than 256 characters")
        options: dict[str, Any] = {"exclude_seen": request.exclude_seen}
        if request.user_features is not None:
            options["user_features"] = _features_frame(run, request.user_features)
        recommender: Any = run  # a run takes user_features; a bundle refuses them above
        try:
            table = await asyncio.wait_for(
                run_in_threadpool(recommender.recommend, users, request.k, **options),
                settings.timeout_s,
            )
        except TimeoutError:
            raise HTTPException(
                504, f"no answer within the time limit ({settings.timeout_s:g} s)"
            ) from None
        except DataError as error:
            raise HTTPException(422, str(error)) from None
        answers: dict[str, dict[str, Any]] = {}
        rows: list[dict[Any, Any]] = table.to_dict("records")
        for row in rows:
            user = str(row["user"])
            entry = answers.setdefault(
                user,
                {
                    "user": user,
                    "known_user": bool(row["known_user"]),
                    "cold_start": bool(row["cold_start"]),
                    "items": [],
                },
            )
            entry["items"].append({"item": row["item"], "score": float(row["score"])})
        for user in users:  # no item left to rank (every one seen): an empty list
            answers.setdefault(
                user,
                {"user": user, "known_user": user in known, "cold_start": False, "items": []},
            )
        return JSONResponse({"recommendations": [answers[user] for user in users]})

    recommend.__annotations__["body"] = request_model  # a model made at run time
    app.post("/recommend", summary="Top-k items per user")(recommend)
    return app
