"""A model held in the HTTP replica itself (`colocate`): the calls a DeploymentHandle takes, made in-process.

One detector on one machine gains nothing from a second hop: the request would only be serialised to another
replica and back. The ingress calls `LocalModel` exactly as it calls a handle (`await model.detect.remote(...)`),
and the same admission rule holds: past max_ongoing + max_queued requests, BackPressureError (503, Retry-After).
"""
from __future__ import annotations

import contextlib
import inspect
from typing import Any, Iterator

from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from serve.model import ModelServer


class LocalCall:
    """`model.<method>.remote(*args)`: an awaitable of the method's result, admitted by its LocalModel."""

    def __init__(self, owner: "LocalModel", method: str) -> None:
        self.owner, self.method = owner, method

    async def remote(self, *args: Any) -> Any:
        with self.owner.admit():
            result = getattr(self.owner.server, self.method)(*args)
            return await result if inspect.isawaitable(result) else result


class LocalModel:
    """A ModelServer object used through handle-like calls; at most `max_ongoing + max_queued` at once
    (max_queued -1: no limit)."""

    def __init__(self, server: Any, max_ongoing: int, max_queued: int, retry_after_s: float) -> None:
        self.server = server
        self.limit = None if max_queued == -1 else max_ongoing + max_queued
        self.max_queued, self.retry_after_s = max_queued, retry_after_s
        self.active = 0

    def __getattr__(self, method: str) -> LocalCall:
        if method.startswith("_"):
            raise AttributeError(method)
        return LocalCall(self, method)

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Count one call as active while it runs; BackPressureError when the limit is reached."""
        if self.limit is not None and self.active >= self.limit:
            raise BackPressureError(num_queued_requests=self.active - self.limit + self.max_queued,
                                    max_queued_requests=self.max_queued, retry_after_s=self.retry_after_s)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


def colocated(server_args: dict, max_ongoing: int, max_queued: int, retry_after_s: float) -> dict:
    """What build_app binds in place of a model deployment's handle: the model, made in the ingress replica."""
    return {"server_args": server_args, "max_ongoing": max_ongoing, "max_queued": max_queued,
            "retry_after_s": retry_after_s}


def open_model(model: DeploymentHandle | dict) -> DeploymentHandle | LocalModel:
    """A model deployment's handle as it is, or the model a `colocated` spec names, loaded here."""
    if not isinstance(model, dict):
        return model
    server = ModelServer.func_or_class(**model["server_args"])
    return LocalModel(server, model["max_ongoing"], model["max_queued"], model["retry_after_s"])
