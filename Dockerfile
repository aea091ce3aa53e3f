# syntax=docker/dockerfile:1
#
# The portal's image: one image, several roles (deploy/entrypoint.sh):
#   web (default)  gunicorn on port 8000
#   worker         a django-q2 cluster: docker compose up --scale worker=3
#   migrate        apply migrations, then exit
#   check          Django's deployment checks
# Deployments set SECRET_KEY, PORTAL_ENCRYPTION_KEYS, ALLOWED_HOSTS, DATABASE_URL
# and REDIS_URL (or their *_FILE variants); see compose.yaml, deploy/env.example
# and the README's "Deploying".

FROM python:3.12-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY pixverse_site/ pixverse_site/
COPY generations/ generations/

# Only the dependencies stay installed: the project runs from /app, where
# settings find templates/ and static/ beside the code.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install . \
 && pip uninstall --yes pixverse-portal


FROM python:3.12-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=pixverse_site.settings \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    STATIC_HASHED=true \
    PORT=8000

# A fixed uid lets a bind-mounted data folder be chowned to match on the host.
RUN groupadd --system --gid 10001 portal \
 && useradd --system --uid 10001 --gid portal --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin portal \
 && mkdir /data \
 && chown portal:portal /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Owned by root, so the running process cannot change its own code.
COPY manage.py ./
COPY pixverse_site/ pixverse_site/
COPY generations/ generations/
COPY templates/ templates/
COPY static/ static/
COPY locale/ locale/
COPY deploy/ deploy/

# Static files are collected into the image, with compressed, hashed names
# that whitenoise serves. Settings would write generated keys into DATA_DIR;
# a throwaway DATA_DIR keeps them out of the image (and out of every volume).
RUN SECRET_KEY=build-only-collectstatic-not-a-secret DATA_DIR=/tmp/build-data \
    python manage.py collectstatic --no-input \
 && rm -rf /tmp/build-data

USER portal
VOLUME ["/data"]
EXPOSE 8000

# Healthy when /healthz answers 200: database, broker and a recent worker heartbeat.
# The worker role serves no HTTP: compose turns the check off for it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "pixverse_site.healthcheck"]

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
