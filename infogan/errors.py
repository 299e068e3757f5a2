"""The one exception type for errors a user can hit (bad params, missing or corrupt data)."""


class InfoGANError(Exception):
    """A user-facing error; its message says what is wrong and what to do."""
