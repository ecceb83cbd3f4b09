"""The board's pages: a member's way in (`/`), and the live board of one workspace."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from board.http import member_workspace
from runtimes import selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Straight to the board of a member's one workspace, or the list of several."""
    workspaces = selectors.workspaces_of(user_id=request.user.pk)
    if len(workspaces) == 1:
        return redirect("board:workspace", workspace_id=workspaces[0].id)
    return render(request, "board/workspaces.html", {"workspaces": workspaces})


@login_required
def workspace(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = member_workspace(request.user, workspace_id)
    if workspace is None:
        raise Http404("workspace not found")
    names = {w.id: w.name for w in selectors.workspaces_of(user_id=request.user.pk)}
    context = {
        "workspace_id": workspace,
        "workspace_name": names[workspace],
        "others": len(names) > 1,
        "api": reverse("board:api-runtimes", args=[workspace]).removesuffix("runtimes"),
        "socket_path": f"/ws/workspaces/{workspace}/events/",
    }
    return render(request, "board/board.html", context)
