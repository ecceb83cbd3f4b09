"""A member of a workspace, logged in; no channel layer left to the next test."""

import pytest
from channels.layers import channel_layers


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("member", password="pw")


@pytest.fixture
def workspace(make, member):
    workspace = make.workspace()
    workspace.members.add(member)
    return workspace


@pytest.fixture
def browser(client, member):
    client.force_login(member)
    return client


@pytest.fixture(autouse=True)
def _no_channel_layer_left_behind():
    # A socket test's channel layer holds locks of its own event loop, gone once it ends: the
    # next test to announce from sync code would find them bound to a different loop.
    yield
    channel_layers.backends.clear()
