"""A daemon of a fresh workspace, talking to the API through Django's test client."""

import pytest

from tests.helpers.daemon_client import DaemonClient


@pytest.fixture
def daemon(make, django_capture_on_commit_callbacks):
    return DaemonClient(make.workspace(), commits=django_capture_on_commit_callbacks)
