from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """The events of spec §3 as rows, written in the transaction of the change they describe,
    numbered per workspace and relayed to the channel layer."""

    name = "outbox"
    default_auto_field = "django.db.models.BigAutoField"
