"""How far the relay is behind, for the metrics: events published ever, and waiting now."""

from dataclasses import dataclass

from common.sql import fetch_one
from outbox import queries


@dataclass(frozen=True)
class Backlog:
    published: int  # events published since the outbox began
    unpublished: int  # recorded, committed, not yet published: the lag


def backlog() -> Backlog:
    return fetch_one(queries.BACKLOG, into=Backlog)
