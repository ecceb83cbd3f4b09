"""Daemon tokens: made once, stored only as a SHA-256, checked against the database's clock."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from uuid import UUID

from django.db.models.functions import Now

from common.sql import fetch_one
from runtimes import queries
from runtimes.models import DaemonToken, Workspace

# Ten years: a longer life is no expiry at all, and dates past year 9999 cannot be read back.
MAX_EXPIRES_IN_DAYS = 3650

# A prefix lets secret scanners and people recognise a leaked token for what it is.
TOKEN_PREFIX = "mdt_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def issue_token(
    *, workspace: Workspace, name: str = "", expires_in: timedelta | None = None
) -> tuple[DaemonToken, str]:
    """Makes a token for `workspace`; returns the row and the raw token, which exists only
    in this return value. Refuses (ValueError) an expiry beyond MAX_EXPIRES_IN_DAYS."""
    if expires_in is not None and not timedelta(0) < expires_in <= timedelta(MAX_EXPIRES_IN_DAYS):
        raise ValueError(f"a token expires within {MAX_EXPIRES_IN_DAYS} days, not {expires_in}")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = DaemonToken.objects.create(
        workspace=workspace,
        name=name,
        token_hash=hash_token(raw),
        expires_at=None if expires_in is None else Now() + expires_in,
    )
    token.refresh_from_db()
    return token, raw


def authenticate(raw: str) -> UUID | None:
    """The workspace of a live (unrevoked, unexpired) token, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    live = fetch_one(queries.AUTHENTICATE_TOKEN, token_hash=hash_token(raw))
    return live.workspace_id if live else None
