"""What a command says when the world is not as it expects: a file it cannot read, a database
it cannot use, a configuration that does not validate. One line naming what to do, never a
traceback, an SQL statement's parameters, a data value or a secret."""

from __future__ import annotations

import errno

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from kernel.errors import ConfigError, FatalError, NeuronError, RetriableError

_OS_ADVICE = {
    errno.ENOENT: "it does not exist: check the path",
    errno.EACCES: "permission denied: run as the hub's user or fix the file's mode",
    errno.EPERM: "operation not permitted: run as the hub's user",
    errno.ENOSPC: "no space left on the device: free some and run the command again",
    errno.EROFS: "the file system is read-only",
    errno.EADDRINUSE: "the address is in use: stop what listens there or choose another port",
    errno.ECONNREFUSED: "nothing answers there: is the service running?",
}


def user_error(exc: BaseException) -> NeuronError:
    """The hub's error for a failure of the world around a command."""
    if isinstance(exc, ValidationError):
        return config_error(exc)
    if isinstance(exc, OperationalError):
        # The driver's message may quote the statement and its parameters: name the kind only.
        kind = type(exc.orig).__name__ if exc.orig is not None else "OperationalError"
        return RetriableError(
            f"the control database cannot be used ({kind}): it may be locked by another process, "
            "read-only or unreachable; check control_db_url and try again"
        )
    if isinstance(exc, SQLAlchemyError):
        return FatalError(f"the control database refused the operation ({type(exc).__name__}): run `neuron init`")
    if isinstance(exc, OSError):
        advice = _OS_ADVICE.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        where = f"{exc.filename}: " if exc.filename else ""
        return FatalError(f"{where}{advice}")
    return FatalError(type(exc).__name__)


def config_error(exc: ValidationError) -> ConfigError:
    """A settings model's validation failure: where and what, never the value given."""
    problems = [f"{'.'.join(str(part) for part in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
    return ConfigError("invalid configuration: " + "; ".join(problems))
