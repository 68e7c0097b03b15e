"""An S3-compatible object store on loopback for the district's tests: moto's server
(`python -m moto.server`), a separate process in its own virtualenv (`.venv-s3peer`, made by
`make test` from simulator/s3_peer.txt) that implements the S3 REST API from AWS's
specification and shares no code with pyarrow's S3 client, which pyiceberg writes through."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kernel.settings import REPO_ROOT
from tests.services import missing

ACCESS_KEY = "district-test"
SECRET_KEY = "district-test-secret"
REGION = "cn-east-2"


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str

    def properties(self) -> dict[str, str]:
        """pyiceberg's catalog properties for this store (PyArrowFileIO)."""
        return {
            "s3.endpoint": self.endpoint,
            "s3.access-key-id": ACCESS_KEY,
            "s3.secret-access-key": SECRET_KEY,
            "s3.region": REGION,
            "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
        }

    def filesystem(self):  # type: ignore[no-untyped-def]
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            endpoint_override=self.endpoint.removeprefix("http://"),
            scheme="http",
            allow_bucket_creation=True,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def s3_store(bucket: str) -> Iterator[ObjectStore]:
    """A fresh object store with `bucket` created; stopped afterwards."""
    python = REPO_ROOT / ".venv-s3peer" / "bin" / "python"
    if not python.exists():
        missing("the S3-compatible store (.venv-s3peer; `make test` makes it)")
    port = _free_port()
    process = subprocess.Popen(
        [str(python), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        store = ObjectStore(f"http://127.0.0.1:{port}")
        store.filesystem().create_dir(bucket)
        yield store
    finally:
        process.terminate()
        process.wait(10)
