"""One error tree for the hub, split by what the caller should do (the Singer SDK's split).

Airflow retries only `RetriableError`; a `FatalError` fails the task at once; a
`RecordError` rejects one record to quarantine and the batch carries on.
Messages name their context (stream, window, consumer) but never a data value:
an error message is a log line, and log lines must not carry identifiers.
"""


class NeuronError(Exception):
    """Base of every error the hub raises on purpose."""


class RecordError(NeuronError):
    """One record (or one dropped file of records) cannot be taken: it goes to quarantine, or
    to failed/, with this reason, and the batch carries on."""


class Refused(NeuronError):
    """A request that is answered with a refusal (a 4xx) and never retried: it does not
    authenticate, is not allowed, or asks for what is not offered."""


class RetriableError(NeuronError):
    """A transient failure (5xx, timeout, connection reset): retrying may succeed."""


class FatalError(NeuronError):
    """A failure that retrying will not mend (bad credentials, broken contract, bad config)."""


class ConfigError(FatalError):
    """The hub's configuration, a contract or a policy is invalid."""


class SourceAuthError(FatalError):
    """A source refused our credentials (401/403)."""


class BatchRejected(FatalError):
    """A batch exceeded its failure budget: nothing from it is loaded or published."""


class NotInitialised(FatalError):
    """The hub's state (keys, control database) has not been created: run `neuron init`."""


class IntegrityError(FatalError):
    """A signature, digest or manifest did not verify."""


class PublishBlocked(FatalError):
    """A publish that would break a policy's guarantee (k-anonymity on microdata): withheld whole."""
