# syntax=docker/dockerfile:1
#
# First version of the portal's image; the production issue completes it.
#
# One image, two roles, sharing DATA_DIR (or DATABASE_URL, and REDIS_URL if set),
# because the web process queues tasks that the worker runs:
#   web     the default command: migrations, then gunicorn on port 8000
#   worker  docker run --no-healthcheck ... IMAGE python manage.py qcluster
# The worker serves no HTTP, so the HEALTHCHECK below would mark it unhealthy:
# turn the check off for it (--no-healthcheck, or `healthcheck: disable: true` in compose).
#
# Deployments set SECRET_KEY and PORTAL_ENCRYPTION_KEYS (or their *_FILE variants)
# and ALLOWED_HOSTS; see the README's configuration table.

FROM python:3.12-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY pixverse_site/ pixverse_site/
COPY generations/ generations/

# gunicorn is the image's server only (the local run uses runserver), so it is
# installed here rather than listed in pyproject.toml.
# The project itself is uninstalled again: it runs from /app, where settings find
# templates/ and static/ beside the code, and a second copy in site-packages
# could shadow it.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install . "gunicorn>=23,<24" \
 && pip uninstall --yes pixverse-portal


FROM python:3.12-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=pixverse_site.settings \
    DATA_DIR=/data

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

# Static files are collected into the image, where whitenoise serves them from.
# Without keys configured, settings write a secret key and an encryption key into
# DATA_DIR; a throwaway DATA_DIR keeps them out of the image, since keys left in
# /data would be copied into every new volume and shared by every deployment.
RUN SECRET_KEY=build-only-collectstatic-not-a-secret DATA_DIR=/tmp/build-data \
    python manage.py collectstatic --no-input \
 && rm -rf /tmp/build-data

USER portal
VOLUME ["/data"]
EXPOSE 8000

# Any answer below 500 means Django is serving: / redirects to the login page, and
# a deployment's ALLOWED_HOSTS may answer 400 to a request for 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.error, urllib.request\ntry:\n    urllib.request.urlopen('http://127.0.0.1:8000/', timeout=4)\nexcept urllib.error.HTTPError as e:\n    sys.exit(e.code >= 500)\n"]

# exec hands PID 1 to gunicorn, so `docker stop` reaches it and it stops its workers cleanly.
CMD ["sh", "-c", "python manage.py migrate --no-input && exec gunicorn pixverse_site.wsgi --bind 0.0.0.0:8000 --workers 3"]
