"""Django settings, read from environment variables only (documented in README.md)."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from metrics_source.runtime.env import (
    env_bool,
    env_float,
    env_float_list,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=False)

# Insecure defaults exist only for DEBUG; production refuses to start without a real key.
_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY or (not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32)):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off "
        "(`make run` generates one under .data/ for local use)."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "ninja",
    # Before metrics_source: the built-in roles, set after its migrations, name its permissions.
    "axes",
    "metrics_source",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "metrics_source.runtime.middleware.ContentSecurityPolicyMiddleware",
    "metrics_source.runtime.middleware.JsonApiErrorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "metrics_source.runtime.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "metrics_source.urls"
WSGI_APPLICATION = "metrics_source.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if not _database_url:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Run through `make run` / `make test` (which start an "
        "embedded PostgreSQL when it is unset) or point it at a PostgreSQL server, e.g. "
        "postgres://user@127.0.0.1:5432/metrics_source"
    )
DATABASES = {
    "default": dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", default=True),
    )
}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...)")
DATABASES["default"].setdefault("OPTIONS", {})
# A bounded connect timeout so a dead database gives a quick 503, not a hung request.
DATABASES["default"]["OPTIONS"].setdefault(
    "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5)
)
# Django turns psycopg's prepared statements off (prepare_threshold None) for the sake of
# connection poolers, and then `execute(..., prepare=True)` is silently ignored: the ingest
# INSERT was parsed and planned on every request. Its own cursors bind on the client and never
# prepare, so a threshold that is never reached prepares exactly the hot-path statements that
# ask for it (metrics_source.runtime.db). Off for a pooler in transaction mode that cannot keep
# prepared statements (PgBouncer before 1.21).
if env_bool("DATABASE_PREPARED_STATEMENTS", default=True):
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS: list[Path] = []
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "metrics_source.runtime.staticfiles.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "metrics_source.runtime.staticfiles.ManifestOrPlainStorage"
        )
    },
}
# Serve static files straight from the apps when collectstatic has not run (local use, tests);
# WhiteNoise's warning about the then-missing STATIC_ROOT says nothing useful.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: ")

LOGIN_URL = "admin:login"

# Sign-in: django-axes locks a name from an address out after LOGIN_FAILURE_LIMIT failures in a
# row, for LOGIN_LOCKOUT_MINUTES; a success resets the count. The backend goes first so a
# locked-out attempt never reaches the password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"
# The address lockouts and the audit log count by (one definition for both).
AXES_CLIENT_IP_CALLABLE = "metrics_source.access.addresses.client_address"
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", default=False)
# Set by `manage.py serve` for its web front and gunicorn (never by hand): requests carrying
# it came through the front, whose peer header is then believed (metrics_source.access).
WEB_FRONT_TOKEN = env_str("METRICS_SOURCE_FRONT_TOKEN", "")
# A session ends after this many idle minutes (each request starts the count again).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 480) * 60
SESSION_SAVE_EVERY_REQUEST = True
# One-time secrets (a new write key) travel in a message: keep them server-side, not in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Celery: Redis carries wake-ups only; PostgreSQL holds every piece of state.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
if not CELERY_BROKER_URL:
    raise ImproperlyConfigured(
        "Set REDIS_URL (or CELERY_BROKER_URL), e.g. redis://127.0.0.1:6379/0; `make run` starts "
        "an embedded Redis when neither is set."
    )
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3, "socket_timeout": 10}
# One queue name per deployment; tests give each run its own so parallel runs never share work.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")

# Forwarding (README "Forwarding"). Seconds between sweeps: each sweep fans new events out to
# destinations and starts a delivery task for each destination with work due.
FORWARDING_SWEEP_SECONDS = env_float("FORWARDING_SWEEP_SECONDS", 2.0)
# Delays before the 2nd, 3rd, ... attempt of a delivery (seconds, comma-separated); after the
# last one a delivery that still fails is dead. The default spreads 10 attempts over about two
# days, as Svix does (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, ...); each delay gets +-20 % jitter.
FORWARDING_RETRY_SCHEDULE = env_float_list(
    "FORWARDING_RETRY_SCHEDULE", [5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000]
)
# A destination that has failed without a single success for this long is paused.
FORWARDING_PAUSE_AFTER_SECONDS = env_float("FORWARDING_PAUSE_AFTER_SECONDS", 24 * 3600)
# How long one delivery task drains a destination before handing over to a fresh task.
FORWARDING_TASK_SECONDS = env_float("FORWARDING_TASK_SECONDS", 5.0)
# A delivery task enqueued but not started after this long (lost with Redis) is enqueued again.
FORWARDING_REQUEUE_SECONDS = env_float("FORWARDING_REQUEUE_SECONDS", 60.0)
# A claim outlives the request timeout by this much; then a killed worker's batch is due again.
FORWARDING_CLAIM_MARGIN_SECONDS = env_float("FORWARDING_CLAIM_MARGIN_SECONDS", 30.0)
# Destinations on loopback, private, link-local or metadata addresses, and plain http://, are
# refused unless this is on (development and tests send to receivers on 127.0.0.1).
FORWARDING_ALLOW_PRIVATE_NETWORKS = env_bool("FORWARDING_ALLOW_PRIVATE_NETWORKS", default=False)
# Ports a destination URL may name (any, where private networks are allowed).
try:
    FORWARDING_ALLOWED_PORTS = tuple(
        int(port) for port in env_list("FORWARDING_ALLOWED_PORTS", ["443"]) if port
    )
except ValueError:
    raise ImproperlyConfigured(
        "FORWARDING_ALLOWED_PORTS must be comma-separated port numbers, e.g. 443,8443"
    ) from None

# Dashboard summaries: the rollup runs after each ingest (a wake-up) and every
# SUMMARIES_REFRESH_SECONDS; one task works at most SUMMARIES_TASK_SECONDS, then hands over.
SUMMARIES_REFRESH_SECONDS = env_float("SUMMARIES_REFRESH_SECONDS", 5.0)
SUMMARIES_TASK_SECONDS = env_float("SUMMARIES_TASK_SECONDS", 20.0)

CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "forwarding-sweep": {
        "task": "metrics_source.tasks.forwarding_sweep",
        "schedule": FORWARDING_SWEEP_SECONDS,
        # A sweep that waited longer than its interval is superseded by the next one.
        "options": {"expires": max(FORWARDING_SWEEP_SECONDS, 1.0)},
    },
    "summaries-refresh": {
        "task": "metrics_source.tasks.summaries_refresh",
        "schedule": SUMMARIES_REFRESH_SECONDS,
        "options": {"expires": max(SUMMARIES_REFRESH_SECONDS, 1.0)},
    },
}

# Secrets at rest (signing secrets, destination credentials): Fernet keys, newest first
# (metrics_source/runtime/encryption.py); without them one is derived from SECRET_KEY.
SECRETS_ENCRYPTION_KEYS = env_list("SECRETS_ENCRYPTION_KEYS", [])

# Ingest.
# The plausibility window for an event's timestamp: older or further ahead is refused (per
# event, naming the field; the rest of a batch is stored).
EVENT_MAX_AGE_DAYS = env_int("EVENT_MAX_AGE_DAYS", 3650)
EVENT_MAX_FUTURE_SECONDS = env_int("EVENT_MAX_FUTURE_SECONDS", 86400)
WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = env_int("WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS", 300)
# Seconds each web process may keep a write key's source in memory: a key rotated or a source
# disabled elsewhere stops working within this time (at once in the process that saved it).
# 0 looks every request up in the database.
SOURCE_CACHE_SECONDS = env_float("SOURCE_CACHE_SECONDS", 5.0)

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
if env_bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS only: redirect plain http (health checks from inside the network excepted) and tell
# browsers to use https for SECURE_HSTS_SECONDS (start small: browsers remember it).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)

# The root level of every process `manage.py serve` starts (Django's here, Celery's by --loglevel).
LOG_LEVEL = (env_str("LOG_LEVEL", "INFO") or "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes says INFO at every start; failed sign-ins are logged by the access module.
        "axes": {"level": "WARNING"},
    },
}
