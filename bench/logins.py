"""Login flood: heartbeat latency while --logins clients post failing admin logins as fast as
they can, through nginx with docker-compose.yml's config in front of the web process. Three
runs on the same data: heartbeats alone (the baseline), the flood with the proxy's login
limits and the app's lockout off (as before them), and the flood with both on.

    DATABASE_URL=postgres://... python -m bench.logins [--seconds 5] [--logins 64]
                                [--beaters 4] [--keep]

Works only in its own database, `<name>_bench_logins` on the DATABASE_URL server, dropped at the
end unless --keep. --beaters daemons each send a heartbeat every 50 ms over their own keep-alive
connection (closed loop: a slow answer delays the next beat, and its latency is counted).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import re
import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench.common import arguments, django_database, serving
from multica.processes import free_port
from tools.servers import nginx

BEAT_EVERY_SECONDS = 0.05
TIMEOUT_SECONDS = 10.0
# Lockout off: a limit no flood of a few seconds reaches.
NO_LOCKOUT = str(10**9)


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    logins: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def heartbeats(port: int, token: str, runtime_id: str, until: float, tally: Tally) -> None:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    body = json.dumps({"runtime_id": runtime_id})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            client.request("POST", "/api/daemon/heartbeat", body=body, headers=headers)
            response = client.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
            client.close()
        elapsed = time.perf_counter() - start
        with tally.lock:
            if ok:
                tally.latencies_ms.append(elapsed * 1000)
            else:
                tally.failures += 1
        time.sleep(max(0.0, BEAT_EVERY_SECONDS - elapsed))
    client.close()


def logins(port: int, until: float, tally: Tally) -> None:
    """Failing logins with a valid CSRF token, back to back on one keep-alive connection."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    client.request("GET", "/admin/login/")
    page = client.getresponse()
    html = page.read().decode()
    cookie = re.search(r"csrftoken=([^;]+)", page.headers["Set-Cookie"]).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    form = f"csrfmiddlewaretoken={token}&username=admin&password=guess"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}"}
    while time.monotonic() < until:
        try:
            client.request("POST", "/admin/login/", body=form, headers=headers)
            response = client.getresponse()
            response.read()
            status = response.status
        except OSError:
            status = "error"
            client.close()
        with tally.lock:
            tally.logins[status] += 1


@contextmanager
def front_door(*, throttled: bool) -> Iterator[int]:
    os.environ["LOGIN_FAILURE_LIMIT"] = "10" if throttled else NO_LOCKOUT
    with serving("web") as (_, web):
        port = free_port()
        with nginx(port, web, free_port(), limits=throttled):
            yield port


def flood(port: int, count: int, until: float, answers: multiprocessing.Queue) -> None:
    """`count` login clients on threads of this process (not the one timing heartbeats, so
    that their Python does not delay its clock readings); their answers to `answers`."""
    tally = Tally()
    threads = [threading.Thread(target=logins, args=(port, until, tally)) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answers.put(dict(tally.logins))


def run(args, *, flooded: bool, throttled: bool, token: str, runtime_id: str) -> Tally:
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()  # each run starts with no failures on record
    tally = Tally()
    with front_door(throttled=throttled) as port:
        until = time.monotonic() + args.seconds
        answers = multiprocessing.Queue()
        flooding = multiprocessing.Process(target=flood, args=(port, args.logins, until, answers))
        if flooded:
            flooding.start()
        beaters = [
            threading.Thread(target=heartbeats, args=(port, token, runtime_id, until, tally))
            for _ in range(args.beaters)
        ]
        for thread in beaters:
            thread.start()
        for thread in beaters:
            thread.join()
        if flooded:
            tally.logins.update(answers.get(timeout=2 * TIMEOUT_SECONDS))
            flooding.join()
    return tally


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else 0.0


def row(label: str, tally: Tally) -> str:
    lat = tally.latencies_ms
    answered = " ".join(f"{k}:{v}" for k, v in sorted(tally.logins.items(), key=str)) or "-"
    p50, p99, top = percentile(lat, 50), percentile(lat, 99), max(lat, default=0.0)
    figures = f"{len(lat):>7}{p50:>9.1f}{p99:>10.1f}{top:>10.1f}{tally.failures:>6}"
    return f"{label:<26}{figures}  {answered}"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--logins", type=int, default=64)
    parser.add_argument("--beaters", type=int, default=4)
    args = parser.parse_args()
    with django_database("_bench_logins", keep=args.keep):
        from django.contrib.auth import get_user_model

        from runtimes.models import AgentRuntime, Workspace
        from runtimes.tokens import issue_token

        get_user_model().objects.create_superuser("admin", password=secrets.token_urlsafe(16))
        workspace = Workspace.objects.create(name="bench")
        runtime = AgentRuntime.objects.create(
            workspace=workspace, name="bench", daemon_id="bench", provider="claude"
        )
        token = issue_token(workspace=workspace)[1]
        scenarios = [
            ("heartbeats alone", False, True),
            (f"{args.logins} logins, no throttle", True, False),
            (f"{args.logins} logins, throttled", True, True),
        ]
        print(f"{'run':<26}{'beats':>7}{'p50 ms':>9}{'p99 ms':>10}{'max ms':>10}{'lost':>6}"
              "  logins answered")  # fmt: skip
        for label, flooded, throttled in scenarios:
            tally = run(args, flooded=flooded, throttled=throttled, token=token,
                        runtime_id=str(runtime.id))  # fmt: skip
            print(row(label, tally))


if __name__ == "__main__":
    main()
