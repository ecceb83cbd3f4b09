"""Fixtures for listening as a member: a workspace and a logged-in member's session cookie."""

import pytest
from channels.layers import channel_layers

from outbox import relay
from tests.helpers.websockets import session_cookie


@pytest.fixture
def member(make, django_user_model):
    """(workspace, session cookie) of a logged-in member."""
    workspace = make.workspace()
    user = django_user_model.objects.create_user("member")
    workspace.members.add(user)
    return workspace, session_cookie(user)


@pytest.fixture(autouse=True)
def _channel_layer_fresh(monkeypatch):
    # A test that took the channel layer down must not leave the others skipping announcements.
    monkeypatch.setattr(relay, "_layer_down_until", 0.0)


@pytest.fixture(autouse=True)
def _channel_layer_of_its_own():
    # A layer of its own for each test, as for each daphne process: channels-redis keeps
    # per-loop state once a receive is cancelled (see tests.helpers.websockets.listen).
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
