"""Streaming a published partition file with bounded memory, signed before its first byte.

A response signature covers the body's Content-Digest, and a digest needs the whole body.
For a partition the hub already has it: the SHA-256 of the file, signed in its manifest and
checked when the file was first read (api.records.VerifiedFiles). So the head goes out
signed over that digest and the file follows in chunks of `chunk_size` bytes, hashed on the
way. Should the file have changed since (a disk error, tampering), the final chunk is held
back and the connection broken: the consumer never receives a body that matches the digest
it was promised but differs from what was published.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.asgi import STREAM, content_digest
from kernel.errors import IntegrityError

PARQUET = "application/vnd.apache.parquet"


class PartitionFile(Response):
    """A Parquet partition streamed from the lake; `sha256` is the manifest's (hex)."""

    media_type = PARQUET

    def __init__(self, path: Path, sha256: str, headers: dict[str, str], chunk_size: int) -> None:
        self.path = path
        self.sha256 = bytes.fromhex(sha256)
        self.chunk_size = chunk_size
        size = path.stat().st_size
        fixed = {"content-length": str(size), "content-digest": content_digest(self.sha256)}
        super().__init__(content=None, status_code=200, headers={**headers, **fixed}, media_type=PARQUET)

    def _read(self, file: BinaryIO, hasher: Any) -> bytes:
        # In a worker thread: reading and hashing a chunk never stalls the event loop.
        chunk = file.read(self.chunk_size)
        hasher.update(chunk)
        return chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hasher = hashlib.sha256()
        with open(self.path, "rb") as file:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers, STREAM: True})
            chunk = await anyio.to_thread.run_sync(self._read, file, hasher)
            while True:
                following = await anyio.to_thread.run_sync(self._read, file, hasher) if chunk else b""
                if not following:
                    if hasher.digest() != self.sha256:
                        raise IntegrityError(f"{self.path.name} changed while it was being served")
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = following
