"""DJANGO_ENV=production: `check --deploy` is clean; a missing secret or host list, or DEBUG on, stops start-up."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

STRONG_KEY = "k" * 10 + "Zq8-Lw_3vR9tYp2XeN7uJb4HcM6sDf1GaQ0oWi5nEr"


def production_env(tmp_path, **changes) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TANDEM_", "DJANGO_", "SESSION_", "CSRF_")) and key not in {"DEBUG", "SECRET_KEY"}
    }
    env.update(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": STRONG_KEY,
            "ALLOWED_HOSTS": "tandem.example.org",
            "TANDEM_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
            "TANDEM_VAR_DIR": str(tmp_path),
        }
    )
    env.pop("DATABASE_URL", None)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean(tmp_path):
    done = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    output = done.stdout + done.stderr
    security = [line for line in output.splitlines() if "security.W" in line or "security.E" in line]
    assert not security, "\n".join(security)
    assert done.returncode == 0, output
    assert "System check identified no issues" in output, output


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SECRET_KEY": None}, "DJANGO_ENV=production needs SECRET_KEY"),
        ({"ALLOWED_HOSTS": None}, "DJANGO_ENV=production needs ALLOWED_HOSTS"),
        ({"DEBUG": "1"}, "DJANGO_ENV=production with DEBUG on"),
        ({"DJANGO_ENV": "prod"}, "DJANGO_ENV='prod' is not a profile"),
        ({"TANDEM_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "TANDEM_PROXY_SSL_HEADER='X-Forwarded-Proto'"),
        ({"TANDEM_HSTS_SECONDS": "a year"}, "TANDEM_HSTS_SECONDS='a year' is not an integer"),
        ({"TANDEM_SESSION_HOURS": "0"}, "TANDEM_SESSION_HOURS must be at least 1"),
        ({"TANDEM_TOKEN_DAYS": "400"}, "TANDEM_TOKEN_DAYS=400 must be between 1 and TANDEM_TOKEN_MAX_DAYS=365"),
        ({"TANDEM_CACHE_URL": "memcached://x"}, "TANDEM_CACHE_URL='memcached://x' is not a redis://"),
    ],
)
def test_bad_or_missing_settings_stop_start_up_with_the_variable_named(tmp_path, changes, message):
    done = manage(production_env(tmp_path, **changes), "check")
    assert done.returncode != 0
    assert message in done.stderr, done.stderr[-2000:]


PRINT = (
    "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
    "s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS, "
    "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER, "
    "s.SESSION_COOKIE_AGE, s.SECURE_REFERRER_POLICY, s.SECURE_CROSS_ORIGIN_OPENER_POLICY, "
    "s.CACHES['default']['BACKEND'])"
)


def test_the_profile_turns_on_what_it_documents(tmp_path):
    done = manage(production_env(tmp_path, TANDEM_CACHE_URL="redis://127.0.0.1:6379/2"), "shell", "-c", PRINT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == (
        "False True True True True Lax 31536000 True False True ('HTTP_X_FORWARDED_PROTO', 'https') 43200 "
        "same-origin same-origin django.core.cache.backends.redis.RedisCache"
    )


def test_development_keeps_plain_http_working(tmp_path):
    env = production_env(tmp_path, DJANGO_ENV=None, SECRET_KEY=None, ALLOWED_HOSTS=None, TANDEM_PROXY_SSL_HEADER=None)
    done = manage(env, "shell", "-c", PRINT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == (
        "False False False True True Lax 0 True False False None 43200 "
        "same-origin same-origin django.core.cache.backends.filebased.FileBasedCache"
    )
