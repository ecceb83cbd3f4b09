# The Celery app loads with Django, so that shared tasks bind to it, and `celery -A multica`
# finds it here.
from multica.celery_app import app as celery_app

__all__ = ("celery_app",)
