"""One request on its way through the gate (api.middleware): its audit note, the clock it is
judged by, and the response it is getting, buffered or streamed."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio
from starlette.types import Message, Scope, Send

from api.asgi import STREAM, BufferedResponse, FieldLines
from api.notes import RequestNote
from kernel.errors import Refused, RetriableError


class Refusal(Refused):
    """A request the gate answers itself: status, detail for the caller, reason for the log."""

    def __init__(self, status: int, detail: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.detail, self.reason, self.headers = status, detail, reason, headers or {}


class AuditUnavailable(RetriableError):
    """The audit entry of a stream could not be written before its head."""


class Replayed(Refused):
    """The request's nonce was claimed by another request first (found when its entry was written)."""


class Exchange:
    """The request, its note and its response; `capture` is the `send` the routes see."""

    def __init__(
        self,
        scope: Scope,
        send: Send,
        stall_seconds: float,
        on_stream: Callable[[Exchange, int], Awaitable[bool]],
    ) -> None:
        self.scope, self.send = scope, send
        self.stall_seconds = stall_seconds
        self.on_stream = on_stream  # audits a stream's head; False: the nonce was replayed
        self.note = RequestNote()
        self.now: datetime = scope["app"].state.now()
        self.started = time.perf_counter()
        self.response = BufferedResponse()
        self.streamed = False
        self.cancel = anyio.CancelScope()

    async def capture(self, message: Message) -> None:
        """Buffer a response, or audit a stream's head and pass the stream on."""
        if message["type"] == "http.response.start" and message.get(STREAM):
            self.cancel.deadline = math.inf  # the head is ready: from now on the limit is per chunk
            self.note.response_digest = FieldLines.from_asgi(message.get("headers", [])).get("content-digest")
            try:
                written = await self.on_stream(self, message["status"])
            except Exception as exc:
                raise AuditUnavailable from exc
            if not written:
                raise Replayed
            self.streamed = True
            await self.send(message)
        elif self.streamed:
            with anyio.fail_after(self.stall_seconds):
                await self.send(message)
        else:
            await self.response.capture(message)

    def refuse(self, refusal: Refusal) -> None:
        """Answer with the refusal instead of whatever the routes produced."""
        self.note.reason = refusal.reason
        self.response = BufferedResponse.json(refusal.status, {"detail": refusal.detail}, refusal.headers)
