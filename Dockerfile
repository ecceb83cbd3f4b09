# One image for every app process: web (granian), ws (daphne), worker and beat differ only in
# command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# The admin's static files, collected once into the image and served by whitenoise.
RUN DEBUG=1 python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 --home-dir /app app \
    && mkdir -p /var/lib/beat \
    && chown app /var/lib/beat
USER app

EXPOSE 8000 8001
CMD ["python", "-m", "multica.web"]
