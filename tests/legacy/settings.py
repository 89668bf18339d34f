"""Settings of the Django-era backend, from the environment (DATABASE_URL, SECRET_KEY, ...)."""

import os
from urllib.parse import unquote, urlsplit

from django.contrib.auth.hashers import PBKDF2PasswordHasher


def _database(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Persistent connections, as a production Django under gunicorn would use.
        "CONN_MAX_AGE": 60,
    }


class EnvPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's pbkdf2_sha256, with the iteration count from PASSWORD_ITERATIONS if set."""

    iterations = int(os.environ.get("PASSWORD_ITERATIONS", PBKDF2PasswordHasher.iterations))


SECRET_KEY = os.environ.get("SECRET_KEY", "legacy-test-secret-not-for-production")
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
ROOT_URLCONF = "tests.legacy.urls"
WSGI_APPLICATION = "tests.legacy.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {
    "default": _database(
        os.environ.get("DATABASE_URL", "postgresql://maps:maps@127.0.0.1:55432/maps")
    )
}
PASSWORD_HASHERS = ["tests.legacy.settings.EnvPBKDF2PasswordHasher"]
MARTIN_URL = os.environ.get("MARTIN_URL", "http://127.0.0.1:3000")
SITE_ID = 1

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.sites",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "drf_spectacular",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "dj_rest_auth",
    "dj_rest_auth.registration",
    "tests.legacy.core",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "tests.legacy.core.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tests.legacy.core.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Maps platform (Django era)",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
# The frontend signed in for a token and sent it; no session cookie (and CSRF) on top.
REST_AUTH = {"TOKEN_MODEL": "rest_framework.authtoken.models.Token", "SESSION_LOGIN": False}
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
# Debian 12's GDAL 3.6 cannot block file access in spatial references; the legacy app
# only ever reads EPSG:4326 from its own tables.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
