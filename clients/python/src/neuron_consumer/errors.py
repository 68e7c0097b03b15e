"""What can go wrong, each with a one-line message a person can act on."""

from __future__ import annotations


class ConsumerError(Exception):
    """A failure reported to the user as one line (the CLI exits non-zero, no traceback)."""

    exit_code = 1


class IntegrityError(ConsumerError):
    """Something the hub sent (or a stored file) does not verify: it is never used."""

    exit_code = 3


class HubRefused(ConsumerError):
    """The hub answered, with a valid signature, that it will not serve the request."""

    exit_code = 4

    def __init__(self, status: int, detail: object) -> None:
        super().__init__(f"the hub refused the request ({status}): {detail}")
        self.status = status
        self.detail = detail


class Unavailable(ConsumerError):
    """The hub could not be reached or answered 429/5xx after the retries."""

    exit_code = 5
