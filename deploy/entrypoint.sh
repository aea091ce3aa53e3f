#!/bin/sh
# The image's entry point: one image, several roles.
#   web      serve the portal with gunicorn (migrates first when MIGRATE_ON_START=true)
#   worker   run a django-q2 cluster (Q_WORKERS processes)
#   migrate  apply migrations once, then exit (compose runs it before web and worker)
#   check    Django's deployment checks; fails on any warning
# Anything else is run as a command, e.g. `manage.py createsuperuser`.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
  web)
    if [ "${MIGRATE_ON_START:-false}" = "true" ]; then
      "$PYTHON" manage.py migrate --no-input
    fi
    exec "$PYTHON" -m gunicorn pixverse_site.wsgi \
      --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-3}" \
      --threads "${WEB_THREADS:-4}" \
      --timeout "${WEB_TIMEOUT:-60}" \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --access-logfile - "$@"
    ;;
  worker)
    exec "$PYTHON" manage.py qcluster "$@"
    ;;
  migrate)
    exec "$PYTHON" manage.py migrate --no-input "$@"
    ;;
  check)
    exec "$PYTHON" manage.py check --deploy --fail-level WARNING "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
