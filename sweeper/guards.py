"""The guards that keep the sweeper's verdicts true when the platform itself fails.

Blindness is not silence: while the platform could not hear heartbeats, that time counts
against no runtime. Two kinds of evidence, both on the database's clock:
- sweeper continuity: a gap since the last successful sweep longer than the stale threshold
  (beat, worker or database down) was blind; the platform hears again from the sweep that
  finds it;
- fleet silence: enough runtimes online and no heartbeat at all for a whole heartbeat period
  (web, proxy or database down for the daemons) is blind now, until heartbeats land again or
  the silence outlasts the reconnect grace (then the fleet really is gone, and the brake holds
  its work). The platform hears again from the first heartbeat after the silence.
After either, every runtime and task gets its full threshold, counted from then.

The mass-outage brake: a sweep that would take more than a share of the online runtimes
offline at once (many daemons, yet heartbeats still arrive from the rest: a network event
between them and us) marks them offline as usual, but holds their tasks until they come back
or an operator releases it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from runtimes import fleet
from sweeper import state
from sweeper.config import Rules

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hearing:
    silent: bool  # the fleet is silent now: the platform cannot hear
    heard_for: timedelta | None  # since it could hear again; None: it never failed to
    state: state.State  # as the sweep found it

    def heard_longer_than(self, threshold: timedelta) -> bool:
        """Whether a rule with this threshold may judge now."""
        return not self.silent and (self.heard_for is None or self.heard_for >= threshold)


def observe(rules: Rules) -> Hearing:
    """Records what the evidence says of the platform's hearing; returns it."""
    before = state.read()
    changed = _after_gap(before, rules)
    heard = fleet.hearing(enough=rules.brake_min_runtimes)
    silent = (
        heard.watched and heard.silent_for is not None and heard.silent_for > rules.heartbeat_period
    )
    if silent:
        changed |= _silent(heard)
    elif before.silent_after is not None:
        changed |= _after_silence(before.silent_after)
    # Silence longer than the grace is no blindness any more: the fleet really is gone.
    blind = silent and heard.silent_for <= rules.reconnect_grace
    after = state.read() if changed else before
    return Hearing(silent=blind, heard_for=after.heard_for, state=after)


def _after_gap(before: state.State, rules: Rules) -> bool:
    """Whether the state read before is out of date: the gap was blind. Another sweep may
    have recorded it since that read (the two sweeps run at once on one schedule); this one
    must then judge by that record too."""
    gap = before.since_last_sweep
    if gap is None or gap <= rules.stale_after:
        return False
    if state.heard_after_gap(stale_after=rules.stale_after):
        logger.warning("sweeper.blind_gap", extra={"since_last_sweep_s": _seconds(gap)})
    return True


def _silent(heard: fleet.Hearing) -> bool:
    if not state.silent_after(heard.last_heard):
        return False  # known already
    logger.warning("sweeper.fleet_silent", extra={"silent_for_s": _seconds(heard.silent_for)})
    return True


def _after_silence(silent_after) -> bool:
    """Whether the state read before is out of date: the platform hears again, recorded by
    this sweep or by another since that read."""
    first = fleet.first_heard_after(silent_after)
    if first is None:
        return False
    if state.heard_after_silence(silent_after=silent_after, first_heard=first):
        logger.warning("sweeper.hearing_again", extra={"heard_since": first.isoformat()})
    return True


def brake_engaged(rules: Rules, hearing: Hearing) -> bool:
    """Whether the brake holds this sweep's work: engaged before, or now, before runtimes are
    marked, because more than `brake_fraction` of a fleet of at least `brake_min_runtimes`
    would then be lost at once: those this sweep would take offline, with those gone offline
    within the reconnect grace (still holding their work) since the brake was last released.
    Daemons lost at one moment turn stale over a heartbeat period, which sweeps can split, so
    one sweep's share alone would often miss them. Reads what would change, and at most that
    many again of the online runtimes."""
    current = hearing.state
    if current.brake_engaged_at is not None:
        return True
    if not hearing.heard_longer_than(rules.stale_after):
        return False  # nothing is marked
    stale = fleet.stale_count(stale_after=rules.stale_after)
    if stale == 0:
        return False
    recent = 0
    if rules.reconnect_grace:
        since = current.now - rules.reconnect_grace
        if current.brake_released_at is not None:
            since = max(since, current.brake_released_at)
        recent = fleet.still_offline_since(since)
    lost = stale + recent
    # The brake holds iff the fleet < lost / fraction: counting further would tell nothing more.
    enough = max(rules.brake_min_runtimes, math.ceil(lost / rules.brake_fraction)) + 1
    size = fleet.online_count(up_to=enough) + recent
    if size < rules.brake_min_runtimes or lost <= rules.brake_fraction * size:
        return False
    if state.engage_brake(online=size, stale=lost):
        logger.warning("sweeper.brake_engaged", extra={"online": size, "stale": lost})
    return True


def release_brake_when_back(rules: Rules) -> None:
    """Releases the brake once the runtimes it holds are back online, down to below
    `brake_fraction` of the fleet it was engaged on. It holds those that went offline within
    the reconnect grace before it engaged, and since."""
    current = state.read()
    if current.brake_engaged_at is None:
        return
    still = fleet.still_offline_since(current.brake_engaged_at - rules.reconnect_grace)
    if still >= rules.brake_fraction * current.brake_online:
        return
    if state.release_brake(by="automatic", engaged_at=current.brake_engaged_at):
        logger.warning("sweeper.brake_released", extra={"by": "automatic", "still_offline": still})


def release_brake(*, by: str) -> bool:
    """An operator's release; logged with who did it. Whether a brake was engaged."""
    released = state.release_brake(by=by)
    if released:
        logger.warning("sweeper.brake_released", extra={"by": by})
    return released


def _seconds(duration: timedelta) -> int:
    return round(duration.total_seconds())
