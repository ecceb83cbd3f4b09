"""A member of a workspace, logged in."""

import pytest


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
