#!/bin/sh
# Tandem's container entrypoint: with TANDEM_MIGRATE=1, apply the database migrations first;
# then run the container's command (gunicorn by default) in this process, so that it receives
# the stop signal itself.
set -eu

case "${TANDEM_MIGRATE:-0}" in
    1 | true | yes | on)
        python manage.py migrate --noinput
        ;;
esac

exec "$@"
