from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """Records the domain signals' events in the outbox, inside the changes' transactions."""

    name = "realtime"

    def ready(self):
        from realtime import receivers
        from runtimes.signals import agents_status_changed, runtimes_changed, runtimes_went_offline
        from tasks.signals import tasks_failed, tasks_queued

        runtimes_went_offline.connect(
            receivers.on_runtimes_went_offline, dispatch_uid="realtime.offline"
        )
        runtimes_changed.connect(
            receivers.on_runtimes_changed, dispatch_uid="realtime.runtimes_changed"
        )
        agents_status_changed.connect(
            receivers.on_agents_status_changed, dispatch_uid="realtime.agents"
        )
        tasks_failed.connect(receivers.on_tasks_failed, dispatch_uid="realtime.tasks_failed")
        tasks_queued.connect(receivers.on_tasks_queued, dispatch_uid="realtime.tasks_queued")
