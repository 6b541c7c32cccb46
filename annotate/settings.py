"""Django settings for Tandem: every deployment knob is read from the environment here, and only here."""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TANDEM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _local_secret_key() -> str:
    """The embedded default keeps a random key in var/ so sessions survive a restart."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "jobs",
    "annotate",
    "routing",
]

MIDDLEWARE = [
    "annotate.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "annotate.urls"
WSGI_APPLICATION = "annotate.wsgi.application"

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

# --- Database -----------------------------------------------------------------------------
# Nothing set: an embedded SQLite file under var/, in WAL mode so readers never wait for the
# writer, and with IMMEDIATE transactions so two writers queue instead of deadlocking.
SQLITE_DEFAULT = VAR_DIR / "tandem.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": SQLITE_DEFAULT}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        }
    )
    # Tests that start a worker process need a database file that process can open.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-tandem.sqlite3")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery -----------------------------------------------------------------------------------
# Nothing set: kombu's SQLAlchemy transport on its own SQLite file, so the broker's polling never
# takes the application database's write lock.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The queue tasks go to, and that `celery worker` (without -Q) takes them from.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# A running job whose heartbeat is older than this has lost its worker and is re-queued.
TANDEM_JOB_STALE_SECONDS = env_int("TANDEM_JOB_STALE_SECONDS", 120)
TANDEM_JOB_MAX_ATTEMPTS = env_int("TANDEM_JOB_MAX_ATTEMPTS", 5)
CELERY_BEAT_SCHEDULE = {
    "leases-expire": {"task": "annotate.tasks.leases_expire", "schedule": 30.0},
    "jobs-sweep": {"task": "jobs.sweep", "schedule": float(env_int("TANDEM_JOB_SWEEP_SECONDS", 30))},
}

# --- LLM judges -------------------------------------------------------------------------------
# Per-call timeout and retries (429 waits Retry-After; 5xx/timeouts back off with jitter).
TANDEM_JUDGE_TIMEOUT = float(os.environ.get("TANDEM_JUDGE_TIMEOUT", "60"))
TANDEM_JUDGE_MAX_ATTEMPTS = env_int("TANDEM_JUDGE_MAX_ATTEMPTS", 6)
TANDEM_JUDGE_BACKOFF = float(os.environ.get("TANDEM_JUDGE_BACKOFF", "0.5"))
TANDEM_JUDGE_MAX_BACKOFF = float(os.environ.get("TANDEM_JUDGE_MAX_BACKOFF", "30"))
# Where per-judge limits live across workers; defaults to the Celery broker when it is Redis.
TANDEM_REDIS_URL = os.environ.get("TANDEM_REDIS_URL", "")
# With Redis, a judge run of at least TANDEM_JUDGE_SHARD_MIN judgments splits over this many processes.
TANDEM_JUDGE_PROCESSES = env_int("TANDEM_JUDGE_PROCESSES", min(4, os.cpu_count() or 1))
TANDEM_JUDGE_SHARD_MIN = env_int("TANDEM_JUDGE_SHARD_MIN", 2000)

# --- Statistics -------------------------------------------------------------------------------
# After new labels a campaign's statistics are recomputed at most once per this many seconds.
TANDEM_STATS_DEBOUNCE_SECONDS = env_int("TANDEM_STATS_DEBOUNCE_SECONDS", 30)
# A learned routing policy retrains on new human labels and reroutes at most this often.
TANDEM_ROUTE_RELEARN_SECONDS = env_int("TANDEM_ROUTE_RELEARN_SECONDS", 600)
TANDEM_STATS_BOOTSTRAP = env_int("TANDEM_STATS_BOOTSTRAP", 1000)

# --- Exports ----------------------------------------------------------------------------------
TANDEM_EXPORT_DIR = Path(os.environ.get("TANDEM_EXPORT_DIR") or VAR_DIR / "exports")

# --- Imports ----------------------------------------------------------------------------------
TANDEM_IMPORT_MAX_ROW_BYTES = env_int("TANDEM_IMPORT_MAX_ROW_BYTES", 1024 * 1024)
TANDEM_IMPORT_MAX_FILE_BYTES = env_int("TANDEM_IMPORT_MAX_FILE_BYTES", 2 * 1024 * 1024 * 1024)
TANDEM_UPLOAD_DIR = Path(os.environ.get("TANDEM_UPLOAD_DIR", VAR_DIR / "uploads"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Auth, API --------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tandem API",
    "DESCRIPTION": "Human-preference data collection with human/LLM-judge routing.",
    "VERSION": "0.1.0",
}

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- i18n, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One line per judge call is noise; failures are reported on the run.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
    },
}
