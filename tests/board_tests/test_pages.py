"""The board's pages: where `/` leads each kind of visitor, and who may open a board."""

import uuid

import pytest

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_log_in(client, make):
    assert client.get("/").url == "/login/?next=/"
    board = f"/workspaces/{make.workspace().id}/"
    assert client.get(board).url == f"/login/?next={board}"
    assert client.get("/login/").status_code == 200


def test_a_member_of_one_workspace_lands_on_its_board(client, make, django_user_model):
    user = django_user_model.objects.create_user("m", password="pw")
    workspace = make.workspace("acme")
    workspace.members.add(user)
    answer = client.post("/login/", {"username": "m", "password": "pw"}, follow=True)
    assert answer.redirect_chain[-1][0] == f"/workspaces/{workspace.id}/"
    page = answer.content.decode()
    assert "acme" in page
    assert 'src="/static/board/board.js"' in page
    assert f'data-socket="/ws/workspaces/{workspace.id}/events/"' in page
    assert f'data-api="/api/workspaces/{workspace.id}/"' in page


def test_a_member_of_several_picks_one(client, make, django_user_model):
    user = django_user_model.objects.create_user("m")
    for name in ("beta", "alpha"):
        make.workspace(name).members.add(user)
    make.workspace("not mine")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert page.index("alpha") < page.index("beta")
    assert "not mine" not in page


def test_a_non_member_gets_404_like_a_missing_workspace(client, make, django_user_model):
    client.force_login(django_user_model.objects.create_user("stranger"))
    assert client.get(f"/workspaces/{make.workspace().id}/").status_code == 404
    assert client.get(f"/workspaces/{uuid.uuid4()}/").status_code == 404
    assert client.get("/workspaces/nope/").status_code == 404
