from django.urls import path

from monitoring import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("health/sweeper", views.sweeper_health, name="health-sweeper"),
    path("metrics", views.metrics_view, name="metrics"),
]
