"""The board's pages, the members' login, and the read API under /api/workspaces/."""

from django.contrib.auth import views as auth_views
from django.urls import path

from board import api, views

app_name = "board"

urlpatterns = [
    path("", views.home, name="home"),
    path("workspaces/<str:workspace_id>/", views.workspace, name="workspace"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="board/login.html"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/workspaces/<str:workspace_id>/runtimes", api.runtimes, name="api-runtimes"),
    path("api/workspaces/<str:workspace_id>/tasks", api.tasks, name="api-tasks"),
    path(
        "api/workspaces/<str:workspace_id>/tasks/<str:task_id>/retry",
        api.retry,
        name="api-task-retry",
    ),
    path(
        "api/workspaces/<str:workspace_id>/runtimes/<str:runtime_id>/dismiss",
        api.dismiss,
        name="api-runtime-dismiss",
    ),
]
