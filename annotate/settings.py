"""Django settings for Tandem: every deployment knob is read from the environment here, and only here."""

import os
import secrets
from datetime import timedelta
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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "axes",
    "csp",
    "jobs",
    "annotate",
    "routing",
]

MIDDLEWARE = [
    "annotate.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotate.middleware.LazyMessageMiddleware",  # Django's MessageMiddleware, its storage made on first use
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a sign-in refused for lock-out into the lock-out answer (AXES_LOCKOUT_CALLABLE).
    "axes.middleware.AxesMiddleware",
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
    # Kept open between requests: a new connection per request re-reads the schema and re-runs the PRAGMAs
    # below, which cost more than the annotator's whole next + submit (gthread: one connection per thread).
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 600)
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
# The embedded (SQLAlchemy) broker is polled, once a second by kombu's default: an import a request
# waits for would start up to a second late. A poll is one indexed SELECT on a small SQLite file.
# (Applied in annotate/celery.py: that transport hands its transport options to create_engine.)
TANDEM_BROKER_POLL_SECONDS = float(os.environ.get("TANDEM_BROKER_POLL_SECONDS") or 0.05)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# A running job's heartbeat is written every TANDEM_JOB_HEARTBEAT_SECONDS by a thread of the run (whatever
# the handler does); one older than TANDEM_JOB_STALE_SECONDS has lost its worker and is re-queued. A queued
# job still waiting TANDEM_JOB_REDISPATCH_SECONDS past its due time has lost its message and is sent again.
TANDEM_JOB_HEARTBEAT_SECONDS = env_int("TANDEM_JOB_HEARTBEAT_SECONDS", 5)
TANDEM_JOB_STALE_SECONDS = env_int("TANDEM_JOB_STALE_SECONDS", 20)
TANDEM_JOB_REDISPATCH_SECONDS = env_int("TANDEM_JOB_REDISPATCH_SECONDS", 300)
TANDEM_JOB_MAX_ATTEMPTS = env_int("TANDEM_JOB_MAX_ATTEMPTS", 5)
if not 0 < TANDEM_JOB_HEARTBEAT_SECONDS * 2 <= TANDEM_JOB_STALE_SECONDS:
    raise ImproperlyConfigured(
        f"TANDEM_JOB_STALE_SECONDS={TANDEM_JOB_STALE_SECONDS} must be at least twice "
        f"TANDEM_JOB_HEARTBEAT_SECONDS={TANDEM_JOB_HEARTBEAT_SECONDS} (and both positive): a job must miss "
        "two heartbeats before it is taken for lost"
    )
# A judge run stopping on a warm shutdown waits at most this long for the calls already sent.
TANDEM_JUDGE_DRAIN_SECONDS = env_int("TANDEM_JUDGE_DRAIN_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    "leases-expire": {"task": "annotate.tasks.leases_expire", "schedule": 30.0},
    "jobs-sweep": {"task": "jobs.sweep", "schedule": float(env_int("TANDEM_JOB_SWEEP_SECONDS", 10))},
}

# --- Demo (`manage.py load_demo`, `make run`) ---------------------------------------------------
# The demo annotators' password (else generated once into VAR_DIR/demo_password), and the demo admin's: its
# own, set once when the admin is created (else generated into VAR_DIR/demo-admin-password) and never reset.
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "")
TANDEM_DEMO_ADMIN_PASSWORD = os.environ.get("TANDEM_DEMO_ADMIN_PASSWORD", "")
if DEMO_PASSWORD and DEMO_PASSWORD == TANDEM_DEMO_ADMIN_PASSWORD:
    raise ImproperlyConfigured(
        "TANDEM_DEMO_ADMIN_PASSWORD equals DEMO_PASSWORD: the demo admin must not share the annotators' password"
    )

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
# A judge's api_key_env may only name a variable starting with this prefix or listed in TANDEM_JUDGE_KEY_ENVS.
TANDEM_JUDGE_KEY_PREFIX = os.environ.get("TANDEM_JUDGE_KEY_PREFIX") or "TANDEM_JUDGE_KEY_"
if not TANDEM_JUDGE_KEY_PREFIX.replace("_", "a").isalnum() or TANDEM_JUDGE_KEY_PREFIX[0].isdigit():
    raise ImproperlyConfigured(f"TANDEM_JUDGE_KEY_PREFIX={TANDEM_JUDGE_KEY_PREFIX!r} is not a variable-name prefix")
TANDEM_JUDGE_KEY_ENVS = env_list("TANDEM_JUDGE_KEY_ENVS", "")
# Judge URLs (routing/judges/egress.py): host patterns and networks (CIDRs) allowed; private and loopback
# addresses only when TANDEM_JUDGE_ALLOW_PRIVATE (default: on, off when DJANGO_ENV=production).
TANDEM_JUDGE_URL_ALLOW = env_list("TANDEM_JUDGE_URL_ALLOW", "")
TANDEM_JUDGE_ALLOW_PRIVATE = env_bool("TANDEM_JUDGE_ALLOW_PRIVATE", os.environ.get("DJANGO_ENV") != "production")

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
TANDEM_IMPORT_MAX_ROWS = env_int("TANDEM_IMPORT_MAX_ROWS", 5_000_000)
# Deeper JSON is refused with the line named (decoders recurse: orjson stops at 255 writing, 1,024 reading).
TANDEM_IMPORT_MAX_JSON_DEPTH = env_int("TANDEM_IMPORT_MAX_JSON_DEPTH", 64)
# A Parquet file may decode to at most this many times its size (at least 64 MiB, at most MAX_FILE_BYTES).
TANDEM_IMPORT_MAX_EXPANSION = env_int("TANDEM_IMPORT_MAX_EXPANSION", 50)
if not 1 <= TANDEM_IMPORT_MAX_JSON_DEPTH <= 200:
    raise ImproperlyConfigured(f"TANDEM_IMPORT_MAX_JSON_DEPTH={TANDEM_IMPORT_MAX_JSON_DEPTH} must be from 1 to 200")
TANDEM_UPLOAD_DIR = Path(os.environ.get("TANDEM_UPLOAD_DIR", VAR_DIR / "uploads"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Uploads bigger than this go to a temporary file as they arrive (the import API spools every upload
# straight into TANDEM_UPLOAD_DIR regardless): a web process never holds a large file in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# How long a POST to an import endpoint without ?async=1 waits for the worker's import job before it
# answers 202 with the job to poll (0: import in the web process instead, as before).
TANDEM_IMPORT_WAIT_SECONDS = env_int("TANDEM_IMPORT_WAIT_SECONDS", 300)

# --- Auth, API --------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# One backend: Django's ModelBackend behind django-axes' check, which refuses a locked-out username and
# address before any password is compared (one, so `login()` needs no backend named).
AUTHENTICATION_BACKENDS = ["annotate.api.auth.LockoutModelBackend"]
# Sign-in lock-out (django-axes): this many failures for one username from one address lock that pair
# for the cool-off; failures during the lock do not extend it. Counted in the database (axes' tables).
AXES_FAILURE_LIMIT = env_int("TANDEM_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("TANDEM_LOGIN_COOLOFF_MINUTES", 15))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME <= timedelta(0):
    raise ImproperlyConfigured("TANDEM_LOGIN_FAILURES and TANDEM_LOGIN_COOLOFF_MINUTES must be at least 1")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "annotate.views.account.lockout_response"
AXES_CLIENT_IP_CALLABLE = "annotate.api.auth.client_ip"

# API tokens (annotate/models/tokens.py): a new token lasts TANDEM_TOKEN_DAYS unless its owner asks
# otherwise, and never longer than TANDEM_TOKEN_MAX_DAYS.
TANDEM_TOKEN_DAYS = env_int("TANDEM_TOKEN_DAYS", 90)
TANDEM_TOKEN_MAX_DAYS = env_int("TANDEM_TOKEN_MAX_DAYS", 365)
if not 1 <= TANDEM_TOKEN_DAYS <= TANDEM_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured(
        f"TANDEM_TOKEN_DAYS={TANDEM_TOKEN_DAYS} must be between 1 and TANDEM_TOKEN_MAX_DAYS={TANDEM_TOKEN_MAX_DAYS}"
    )


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as 6000/min (units s, min, hour, day)."""
    value = os.environ.get(name) or default
    count, _, unit = value.partition("/")
    if not (count.isascii() and count.isdigit()) or unit not in {"s", "sec", "m", "min", "h", "hour", "d", "day"}:
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate: write requests/period, e.g. 600/min or 10/s")
    return value


# Throttle counters live in Django's cache. Redis when TANDEM_CACHE_URL (or TANDEM_REDIS_URL) is set, as in
# production; otherwise SQLite files of their own (diskcache under var/throttle, the "throttle" alias), which every
# gunicorn process on the host shares with no setup step, counts atomically across them and, unlike
# DatabaseCache, never takes the embedded application database's write lock. Other cached values: var/cache.
TANDEM_CACHE_URL = os.environ.get("TANDEM_CACHE_URL") or TANDEM_REDIS_URL
if TANDEM_CACHE_URL:
    if not TANDEM_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"TANDEM_CACHE_URL={TANDEM_CACHE_URL!r} is not a redis://, rediss:// or unix:// URL")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TANDEM_CACHE_URL,
            "KEY_PREFIX": "tandem",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 20000},
        },
        # diskcache: SQLite files under var/throttle, an atomic `incr` across processes. A write waits up to
        # DATABASE_TIMEOUT for the file's lock and is retried; a read that waits longer counts as empty.
        "throttle": {
            "BACKEND": "annotate.api.throttles.CounterCache",
            "LOCATION": str(VAR_DIR / "throttle"),
            "TIMEOUT": None,
            "SHARDS": 4,
            "DATABASE_TIMEOUT": 0.25,
        },
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotate.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "annotate.api.throttles.UserRateThrottle",
        "annotate.api.throttles.TokenRateThrottle",
        "annotate.api.throttles.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_rate("TANDEM_THROTTLE_USER", "6000/min"),
        "token": env_rate("TANDEM_THROTTLE_TOKEN", "6000/min"),
        "anon": env_rate("TANDEM_THROTTLE_ANON", "300/min"),
        "login": env_rate("TANDEM_THROTTLE_LOGIN", "60/min"),
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "annotate.api.schema.TandemAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "annotate.api.pagination.ClampedLimitOffsetPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 100),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": [
        "annotate.api.errors.ErrorShapeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "annotate.api.errors.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "annotate.api.errors.AnyFirstNegotiation",
}
# The largest `limit` a list endpoint accepts; a larger one is clamped to it (annotate/api/pagination.py).
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 1000)
SPECTACULAR_SETTINGS = {
    "TITLE": "Tandem API",
    "DESCRIPTION": "Human-preference data collection with human/LLM-judge routing. Errors answer "
    '`{"detail", "code", "field"}` (validation errors also `errors`, one entry per problem).',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PREPROCESSING_HOOKS": ["annotate.api.schema.v1_endpoints_only"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "annotate.api.schema.error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "ItemFlagKindEnum": "annotate.models.ItemFlag.Kind",
        "CampaignKindEnum": "annotate.schema.KINDS",
        "CampaignRoleEnum": "annotate.models.CampaignMember.Role",
        "InvitationRoleEnum": "annotate.models.Invitation.Role",
        "ImportFormatEnum": "annotate.services.imports.readers.FORMATS",
        "ExportFormatEnum": "annotate.exports.options.FORMATS",
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Production profile -----------------------------------------------------------------------
# DJANGO_ENV=development (the default: local HTTP, embedded database) or production (behind TLS and a
# reverse proxy): production refuses to start without SECRET_KEY and ALLOWED_HOSTS or with DEBUG on, and
# turns on secure cookies, HSTS and the HTTPS redirect; each can still be set on its own below.
DJANGO_ENV = (os.environ.get("DJANGO_ENV") or "development").strip().lower()
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV={DJANGO_ENV!r} is not a profile: use development (default) or production")
PRODUCTION = DJANGO_ENV == "production"
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_ENV=production with DEBUG on: unset DEBUG or set DEBUG=0")
    if not os.environ.get("SECRET_KEY"):
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs SECRET_KEY in the environment, e.g. "
            "SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if not os.environ.get("ALLOWED_HOSTS", "").strip():
        raise ImproperlyConfigured("DJANGO_ENV=production needs ALLOWED_HOSTS (comma-separated host names)")
# "HTTP_X_FORWARDED_PROTO,https": the header the proxy sets, and its value on a request that came over HTTPS.
TANDEM_PROXY_SSL_HEADER = os.environ.get("TANDEM_PROXY_SSL_HEADER", "").strip()
if TANDEM_PROXY_SSL_HEADER:
    _header, _, _value = (part.strip() for part in TANDEM_PROXY_SSL_HEADER.partition(","))
    if not _header.startswith("HTTP_") or not _value:
        raise ImproperlyConfigured(
            f"TANDEM_PROXY_SSL_HEADER={TANDEM_PROXY_SSL_HEADER!r}: "
            "write HEADER,value, e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = (_header, _value)
# The header holding the client's address (e.g. HTTP_X_FORWARDED_FOR) for lock-out and throttling; trusted
# only in production, where a proxy sets it: elsewhere anyone could send it and pick their own address.
TANDEM_CLIENT_IP_HEADER = os.environ.get("TANDEM_CLIENT_IP_HEADER", "").strip() if PRODUCTION else ""
if TANDEM_CLIENT_IP_HEADER and not TANDEM_CLIENT_IP_HEADER.startswith("HTTP_"):
    raise ImproperlyConfigured(
        f"TANDEM_CLIENT_IP_HEADER={TANDEM_CLIENT_IP_HEADER!r}: use the META name, e.g. HTTP_X_FORWARDED_FOR"
    )
SECURE_SSL_REDIRECT = env_bool("TANDEM_SSL_REDIRECT", PRODUCTION)
# /healthz answers the proxy's and the orchestrator's plain-HTTP probes.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("TANDEM_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("TANDEM_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("TANDEM_HSTS_PRELOAD", False)
# Preloading puts the domain into browsers' built-in HTTPS-only lists, hard to undo: the deployer opts in
# with TANDEM_HSTS_PRELOAD=1, and until then check --deploy's reminder (security.W021) is silenced.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
# Pages send the CSRF token from the template (hx-headers), so no script needs to read the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# A session lasts TANDEM_SESSION_HOURS from its last change (sign-in), not 14 days.
SESSION_COOKIE_AGE = env_int("TANDEM_SESSION_HOURS", 12) * 3600
if SESSION_COOKIE_AGE <= 0:
    raise ImproperlyConfigured("TANDEM_SESSION_HOURS must be at least 1")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline script anywhere (behaviour is in static/js, bound by data attributes); inline style attributes
# remain, hence 'unsafe-inline' for styles only. Django's admin needs nothing more.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

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
