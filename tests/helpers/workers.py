"""Real Celery workers for tests: Celery's embedded worker (a thread pool in this process) on
the real broker, and apps whose queue is this test run's alone (brokers are shared)."""

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu.exceptions import OperationalError

from multica.celery_app import app as project_app

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@contextmanager
def app_on(broker_url: str) -> Iterator[Celery]:
    """The project's Celery configuration on `broker_url`, with a queue of its own."""
    app = Celery("multica-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    queue = f"multica-test-{uuid.uuid4().hex}"
    app.conf.update(broker_url=broker_url, task_default_queue=queue)
    try:
        yield app
    finally:
        with suppress(OperationalError), app.connection_for_write() as connection:
            # Declared first: Redis deletes only the bindings its channel knows of, and a
            # binding left behind is a key that never expires.
            bound = app.amqp.queues[queue].bind(connection.default_channel)
            bound.declare()
            bound.delete()
        # The embedded worker made `app` the current one; tasks must go back to the project's.
        project_app.set_current()
        project_app.set_default()


@contextmanager
def worker(app: Celery) -> Iterator[None]:
    # No result backend, so no ping task: the worker is ready once start_worker returns. On
    # AMQP the event loop sleeps in long polls and takes 10 s to stop; the plain loop, 2 s.
    amqp = app.conf.broker_url.startswith("amqp")
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        use_eventloop=False if amqp else None,
    ):
        yield


def wait_until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.1)
