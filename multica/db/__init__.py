"""The database backend: Django's PostgreSQL backend with a health check that costs no query
(see base.py). Settings select it as ENGINE "multica.db"."""
