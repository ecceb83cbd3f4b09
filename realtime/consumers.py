"""The WebSocket a workspace's members listen on for the sweeper's events (spec §3)."""

from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from realtime.receivers import group_name
from runtimes.models import Workspace

# Sent after accepting: a refusal during the handshake reaches a browser as a bare HTTP 403.
CLOSE_NOT_LOGGED_IN = 4401
CLOSE_NOT_A_MEMBER = 4403


class WorkspaceEventsConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self):
        user = self.scope["user"]
        workspace_id = _parse_uuid(self.scope["url_route"]["kwargs"]["workspace_id"])
        if not user.is_authenticated:
            await self._refuse(CLOSE_NOT_LOGGED_IN)
        elif workspace_id is None or not await _is_member(user, workspace_id):
            await self._refuse(CLOSE_NOT_A_MEMBER)
        else:
            self.group = group_name(workspace_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Listening only: whatever a client sends is ignored."""

    async def events_batch(self, message):
        # One channel-layer message carries many events; the browser gets one JSON each.
        for item in message["events"]:
            await self.send_json(item)

    async def _refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)


def _parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


@database_sync_to_async
def _is_member(user, workspace_id: UUID) -> bool:
    return Workspace.members.through.objects.filter(
        workspace_id=workspace_id, user_id=user.pk
    ).exists()
