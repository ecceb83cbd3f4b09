"""Who may listen to a workspace: checked when a socket opens, and again while it stays open."""

from importlib import import_module
from types import SimpleNamespace
from uuid import UUID

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user

from realtime import closing
from runtimes.models import Workspace


def _is_member(user_id, workspace_id: UUID) -> bool:
    return Workspace.members.through.objects.filter(
        workspace_id=workspace_id, user_id=user_id
    ).exists()


@database_sync_to_async
def refusal(user, workspace_id: UUID | None) -> int | None:
    """The close code for a socket opened by `user` (the session's, as the auth middleware
    found it) to `workspace_id` (None: not a workspace id), or None to admit it."""
    if not user.is_authenticated:
        return closing.NOT_LOGGED_IN
    if workspace_id is None or not _is_member(user.pk, workspace_id):
        return closing.NOT_A_MEMBER
    return None


@database_sync_to_async
def revoked(session_key: str, user_id, workspace_id: UUID) -> int | None:
    """The close code for an open socket whose access ended since, or None if it stands: the
    session is read afresh, as the next request on it would be (logged out, expired, or its
    user's password changed: 4401), and the membership too (4403)."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated or user.pk != user_id:
        return closing.NOT_LOGGED_IN
    if not _is_member(user_id, workspace_id):
        return closing.NOT_A_MEMBER
    return None
