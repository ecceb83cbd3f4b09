from django.contrib import admin
from django.urls import include, path

from runtimes.openapi import schema

urlpatterns = [
    path("admin/", admin.site.urls),
    # The daemon-facing API: token-authenticated JSON, see runtimes/openapi.py.
    path("api/daemon/", include("runtimes.api")),
    path("api/daemon/", include("tasks.api")),
    path("api/schema/", schema, name="api-schema"),
]
