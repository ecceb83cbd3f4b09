"""Refusals the domain raises and every interface turns into its own answer (404, 409, ...)."""


class NotAuthenticated(Exception):
    """The caller's credential is missing, unknown, expired or revoked."""


class NotFound(Exception):
    """No such row in the caller's workspace (another workspace's rows look the same)."""


class Conflict(Exception):
    """The row is in a state that does not allow the move."""
