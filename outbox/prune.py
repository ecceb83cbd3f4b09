"""Pruning: published events older than the retention are deleted, oldest first, in chunks."""

from datetime import timedelta

from django.db import transaction

from common.sql import execute
from outbox import queries

# Rows a transaction deletes: a day of a busy fleet is pruned in short transactions that never
# hold the table's pages long against the relay and the writers.
PRUNE_CHUNK = 5000


def prune_events(*, retention: timedelta, chunk_size: int = PRUNE_CHUNK) -> int:
    """Deletes published events recorded longer than `retention` ago (database clock), a chunk
    a transaction; returns how many. Unpublished ones stay for the relay, however old."""
    pruned = 0
    while True:
        with transaction.atomic():
            deleted = execute(queries.PRUNE, retention=retention, limit=chunk_size)
        pruned += deleted
        if deleted < chunk_size:
            return pruned
