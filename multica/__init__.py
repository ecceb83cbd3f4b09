# The Celery app loads with Django, so that shared tasks bind to it.
from multica.celery import app as celery_app

__all__ = ("celery_app",)
