from django.contrib import admin
from django.urls import include, path

# "View site" is the board, at the root. No app list beside every page: lists need the width.
admin.site.site_url = "/"
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("admin/", admin.site.urls),
    # The daemon-facing API (token-authenticated JSON) and its OpenAPI schema.
    path("", include("daemon_api.urls")),
    # Probes and metrics for operators' tools.
    path("", include("monitoring.urls")),
    # The members' board, their login, and the read API for frontends.
    path("", include("board.urls")),
]
