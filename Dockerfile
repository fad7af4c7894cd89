# One image for every role: the web server (this CMD), the Celery worker and beat, and one-shot
# management commands such as `migrate`. compose.yaml chooses the role with `command:`.
#
# 3.11 because requirements.lock is resolved for Python 3.11 (see its header).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=metrics_source.settings \
    WEB_CONCURRENCY=2

WORKDIR /app

# Dependencies before the code, so a code change does not reinstall them. The runtime lock
# pins every version and hash of what the service runs on, and nothing else: no test or lint
# tools, no browser driver, no embedded PostgreSQL/Redis (the servers come from DATABASE_URL /
# REDIS_URL). `make lock` writes it beside the full requirements.lock, with the same pins.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes -r requirements-runtime.lock

COPY pyproject.toml manage.py ./
COPY metrics_source ./metrics_source
COPY dashboard ./dashboard
COPY templates ./templates
# Editable, because settings find templates/ and staticfiles/ next to the packages: the code
# must run from /app, not from a copy in site-packages. setuptools comes from the lock, hence
# no build isolation (which would fetch an unpinned one).
RUN pip install --no-deps --no-build-isolation --editable .

# whitenoise serves the collected, hashed files. Settings refuse to load without these three
# variables, so placeholders are given to this one step only: collectstatic opens no
# connection, and the values do not stay in the image's environment.
RUN DEBUG=0 \
    SECRET_KEY=build-time-placeholder-for-collectstatic-only-0123456789 \
    DATABASE_URL=postgres://build@127.0.0.1:5432/build \
    REDIS_URL=redis://127.0.0.1:6379/0 \
    python manage.py collectstatic --noinput

# Everything above belongs to root and stays read-only for the process user.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /app app
USER app

EXPOSE 8000

# The web service: the buffering front on port 8000 and gunicorn behind it on a private Unix
# socket, restarted by serve if either dies (serve is PID 1 and receives `docker stop`'s
# SIGTERM). WEB_CONCURRENCY sets gunicorn's workers. gunicorn's heartbeat files go to /dev/shm
# because a container's overlay filesystem can stall them.
ENV GUNICORN_CMD_ARGS="--worker-tmp-dir /dev/shm --access-logfile -"
CMD ["python", "manage.py", "serve", "--web-only", "--bind", "0.0.0.0:8000"]
