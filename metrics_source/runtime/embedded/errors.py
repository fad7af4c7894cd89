"""The one error the embedded servers raise."""


class EmbeddedError(Exception):
    """A server could not be started or stopped; the message says what to look at."""
