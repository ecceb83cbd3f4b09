"""Whether the sweeper's verdicts can be trusted now, for the people watching the board: the
brake holds the work of runtimes it took offline, or the platform is (or just was) blind."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sweeper import state
from sweeper.config import Rules


@dataclass(frozen=True)
class Outlook:
    braked: bool
    blind: bool
    message: str  # one sentence for a banner; blank when all is well

    def as_dict(self) -> dict:
        return asdict(self)


def outlook(rules: Rules) -> Outlook:
    """Read only: the state row as the last sweep left it, judged on the database's clock."""
    now = state.read()
    if now.brake_engaged_at is not None:
        return Outlook(
            braked=True,
            blind=False,
            message=(
                f"Mass-outage brake engaged: {now.brake_stale} of {now.brake_online} runtimes "
                "went offline at once; their tasks are held until they come back or an "
                "operator releases the brake."
            ),
        )
    if now.silent_after is not None:
        return _blind("No heartbeat heard from any daemon: nothing is judged until they are.")
    if now.since_last_sweep is not None and now.since_last_sweep > rules.stale_after:
        seconds = round(now.since_last_sweep.total_seconds())
        return _blind(f"No sweep for {seconds} s: the sweeper is not running.")
    if now.heard_for is not None and now.heard_for < rules.stale_after:
        return _blind(
            "The platform hears again after a blind spell: runtimes get their full threshold."
        )
    return Outlook(braked=False, blind=False, message="")


def _blind(message: str) -> Outlook:
    return Outlook(braked=False, blind=True, message=message)
