from django.apps import AppConfig


class RuntimesConfig(AppConfig):
    name = "runtimes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from multica import realtime

        realtime.connect_runtime_receivers()
