"""A daemon's view of the API in tests: real requests through Django's test client, with a real
token for a real workspace."""

from __future__ import annotations

import json
from contextlib import nullcontext

from django.test import Client

from runtimes.tokens import issue_token

API = "/api/daemon/"


class DaemonClient:
    """`commits`: pytest-django's `django_capture_on_commit_callbacks` inside a test's
    transaction, so that each request's after-commit announcements run as if it committed."""

    def __init__(self, workspace, *, commits=None, token: str | None = None):
        self.workspace = workspace
        self.token = token if token is not None else issue_token(workspace=workspace)[1]
        self.client = Client()
        self.commits = commits or (lambda **kwargs: nullcontext())

    def post(self, path: str, body=None, *, raw: bytes | None = None, token: str | None = None):
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        with self.commits(execute=True):
            return self.client.post(
                API + path, data=data, content_type="application/json", headers=self._auth(token)
            )

    def get(self, path: str, *, token: str | None = None):
        return self.client.get(API + path, headers=self._auth(token))

    def _auth(self, token: str | None) -> dict:
        return {"Authorization": f"Bearer {self.token if token is None else token}"}

    def register(self, *providers: str, daemon_id: str = "daemon-1") -> list[dict]:
        response = self.post("register", self.register_body(*providers, daemon_id=daemon_id))
        assert response.status_code == 200, response.content
        return response.json()["runtimes"]

    def register_body(self, *providers: str, daemon_id: str = "daemon-1") -> dict:
        return {
            "workspace_id": str(self.workspace.id),
            "daemon_id": daemon_id,
            "device_name": "laptop",
            "runtimes": [
                {"name": f"laptop {p}", "provider": p, "version": "1.0"}
                for p in providers or ("claude",)
            ],
        }
