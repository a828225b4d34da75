"""AGIPower settings, read from the environment (see README: Configuration)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from agipower.embedded import embedded_database_url, persistent_secret
from money import usd_to_nanos

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
VAR_DIR = Path(env.str("AGIPOWER_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or persistent_secret(
    VAR_DIR / "secret_key"
)
# Keys the HMAC digests of API keys; changing it invalidates every issued key.
APIKEY_SECRET = env.str("APIKEY_SECRET", default="") or SECRET_KEY
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    # Django's admin, with AGIPower's site (titles, a throttled sign-in).
    "agipower.admin_config.OperatorsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files served from here: /api/docs/ needs no CDN.
    "drf_spectacular_sidecar",
    "csp",
    "djstripe",
    "agipower",
    "accounts",
    "billing",
    "apikeys",
    "proxy",
    "invoices",
    "alerts",
    "referrals",
    "insurance",
    "gifts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Every error under /api/ answers JSON, even Django's own 404 and 500.
    "agipower.api_errors.ApiJsonErrorsMiddleware",
    # Content-Security-Policy on every page; Stripe.js's origins come from
    # STRIPE_JS_URL and STRIPE_API_BASE (agipower/csp.py).
    "agipower.csp.StripeAwareCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "agipower.urls"
WSGI_APPLICATION = "agipower.wsgi.application"
ASGI_APPLICATION = "agipower.asgi.application"

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
                # stripe_local: the console's "Test payments" banner.
                "billing.payments.views.payments_mode",
            ],
        },
    },
]

if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    DATABASES = {"default": env.db_url_config(embedded_database_url(VAR_DIR))}
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# The web server's processes lend their connections from a pool of at most
# this many each (agipower/asgi.py); 0: no pool. Other processes connect
# without one.
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=10)
if DB_POOL_MAX_SIZE < 0:
    raise ImproperlyConfigured(
        "DB_POOL_MAX_SIZE must be a whole number of connections, 0 for no pool; "
        f"it is {DB_POOL_MAX_SIZE}"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A cache shared by every process: login throttling and the hot-path caches rely
# on it. The default needs no server of its own.
CACHES = {
    "default": env.cache_url("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:payg"
LOGOUT_REDIRECT_URL = "login"
# Failed logins allowed per email (and per client address) within the window.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# From one client address, across emails: a password spray. Higher, since an
# office or a carrier's NAT puts many people behind one address.
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
LOGIN_FAILURE_WINDOW = timedelta(
    minutes=env.int("LOGIN_FAILURE_WINDOW_MINUTES", default=15)
)
# Password reset emails: requests allowed per email, and per client address,
# within the window; past either, the form answers 429 and sends nothing.
PASSWORD_RESET_LIMIT = env.int("PASSWORD_RESET_LIMIT", default=3)
PASSWORD_RESET_ADDRESS_LIMIT = env.int("PASSWORD_RESET_ADDRESS_LIMIT", default=10)
PASSWORD_RESET_WINDOW = timedelta(
    minutes=env.int("PASSWORD_RESET_WINDOW_MINUTES", default=60)
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Tests and the development server find files without collectstatic.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="AGIPower <billing@localhost>"
)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Content-Security-Policy of every page (console, sign-in, admin, API docs):
# scripts and styles from this site only, nothing inline. Stripe.js's origins
# are added on each response from STRIPE_JS_URL and STRIPE_API_BASE
# (agipower.csp). data: images are Swagger UI's and the admin's icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "apikeys.authentication.ManagementKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "agipower.api_pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "agipower.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AGIPower management API",
    "DESCRIPTION": "Balances, transactions, API keys and payments. Amounts are USD "
    "decimal strings.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Every operation's error answers, and the paths as DESIGN.md writes them.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "agipower.api_schema.errors_documented",
    ],
    # Two fields named status: a key's and a request log's.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "apikeys.models.KeyStatus",
        "RequestStatusEnum": ["ok", "error"],
    },
}

# Billing
BONUS_RATE = Decimal(env.str("BONUS_RATE", default="0.20"))
BONUS_EXPIRY_DAYS = env.int("BONUS_EXPIRY_DAYS", default=365)
# Self-service refunds: of a top-up this young, for this share as a fee.
SELF_REFUND_WINDOW_HOURS = env.int("SELF_REFUND_WINDOW_HOURS", default=24)
SELF_REFUND_FEE_RATE = Decimal(env.str("SELF_REFUND_FEE_RATE", default="0.05"))
# AI insurance's compensation lots expire after this many days (0: never).
INSURANCE_COMPENSATION_EXPIRY_DAYS = env.int(
    "INSURANCE_COMPENSATION_EXPIRY_DAYS", default=365
)
# A hold not settled within this time was left by a crashed worker.
HOLD_TTL = timedelta(seconds=env.int("HOLD_TTL_SECONDS", default=900))
# Auto top-up's cap per account (operators may set another one in admin): past
# either within any 24 hours, auto top-up pauses and tells the customer.
AUTOTOPUP_MAX_CHARGES_PER_DAY = env.int("AUTOTOPUP_MAX_CHARGES_PER_DAY", default=5)
AUTOTOPUP_MAX_NANOS_PER_DAY = usd_to_nanos(
    env.str("AUTOTOPUP_MAX_USD_PER_DAY", default="5000")
)
# Who hears of payments that need an operator (an amount Stripe took that
# differs from the top-up's); empty: every active superuser with an email.
PAYMENTS_ALERT_EMAILS = env.list("PAYMENTS_ALERT_EMAILS", default=[])
# Referrals: what a referrer earns for each top-up its referee pays, and the
# most its rewards may sum to in a calendar month (UTC); the last reward under
# the cap pays what is left of it.
REFERRAL_REWARD_NANOS = usd_to_nanos(env.str("REFERRAL_REWARD_USD", default="5"))
REFERRAL_MONTHLY_CAP_NANOS = usd_to_nanos(
    env.str("REFERRAL_MONTHLY_CAP_USD", default="100")
)

# Stripe. Unset keys mean "payments are not configured": the app starts and
# top-ups say so (billing.payments.stripe_gateway.stripe_configured()). Only
# billing/payments/stripe_gateway/ and billing/payments/webhooks.py talk to Stripe.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Stripe's API address; tests point it at localstripe.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# Stripe.js, for the console's card form (localstripe serves a stand-in).
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
# Local test payments: STRIPE_LOCAL=1 replaces the four settings above with a
# local Stripe emulator on 127.0.0.1:STRIPE_LOCAL_PORT and its test keys
# (billing/localstripe.py; `manage.py serve` starts it). No real money moves,
# and the console says so.
STRIPE_LOCAL = env.bool("STRIPE_LOCAL", default=False)
STRIPE_LOCAL_PORT = env.int("STRIPE_LOCAL_PORT", default=8420)
if STRIPE_LOCAL:
    from billing.payments import localstripe as _localstripe

    STRIPE_SECRET_KEY = _localstripe.SECRET_KEY
    STRIPE_PUBLISHABLE_KEY = _localstripe.PUBLISHABLE_KEY
    STRIPE_WEBHOOK_SECRET = _localstripe.WEBHOOK_SECRET
    STRIPE_API_BASE = f"http://127.0.0.1:{STRIPE_LOCAL_PORT}"
    STRIPE_JS_URL = f"{STRIPE_API_BASE}/js.stripe.com/v3/"
# dj-stripe: the local mirror of Stripe objects (customers, cards, payment
# intents, events). Stripe stays the source of truth.
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith("sk_live_")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# A Stripe customer belongs to the billing account, not to a person.
DJSTRIPE_SUBSCRIBER_MODEL = "accounts.Account"

# Invoices: the seller printed on each (every key is optional).
INVOICE_SELLER = {
    "name": env.str("INVOICE_SELLER_NAME", default="AGIPower"),
    "address_lines": [
        line
        for line in env.str("INVOICE_SELLER_ADDRESS", default="").split(";")
        if line.strip()
    ],
    "email": env.str("INVOICE_SELLER_EMAIL", default="support@agipower.ai"),
    "website": env.str("INVOICE_SELLER_WEBSITE", default="agipower.ai"),
    "tax_id": env.str("INVOICE_SELLER_TAX_ID", default=""),
}

# The /v1 proxy. A disabled or deleted key is refused everywhere within the key
# cache's time; a catalog change applies within the catalog cache's.
PROXY_KEY_CACHE_SECONDS = env.float("PROXY_KEY_CACHE_SECONDS", default=3.0)
PROXY_CATALOG_CACHE_SECONDS = env.float("PROXY_CATALOG_CACHE_SECONDS", default=10.0)
PROXY_DB_POOL_MIN = env.int("PROXY_DB_POOL_MIN", default=2)
PROXY_DB_POOL_MAX = env.int("PROXY_DB_POOL_MAX", default=16)
# Each web worker leases credits of an account it serves (in USD, beyond what the
# requests waiting need) and admits requests against its lease in memory; a
# lease unused this long is given back, and one of a worker that died expires.
PROXY_LEASE_NANOS = usd_to_nanos(env.str("PROXY_LEASE_USD", default="2"))
PROXY_LEASE_IDLE_SECONDS = env.float("PROXY_LEASE_IDLE_SECONDS", default=1.0)
PROXY_LEASE_TTL_SECONDS = env.int("PROXY_LEASE_TTL_SECONDS", default=120)

# Request logs are kept this many days, then deleted by a daily task, whole
# hours and whole month partitions at a time (proxy/retention.py); the hourly
# usage rollups that analytics read are kept.
REQUEST_LOG_RETENTION_DAYS = env.int("REQUEST_LOG_RETENTION_DAYS", default=90)
if REQUEST_LOG_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(
        "REQUEST_LOG_RETENTION_DAYS must be a whole number of days, at least 1; "
        f"it is {REQUEST_LOG_RETENTION_DAYS}"
    )

# The longest one CSV export (of request logs, of transactions) may run, in
# seconds: it holds its snapshot and locks on the logs' partitions until it
# ends, however slowly its client reads (money/csv_stream.py).
CSV_EXPORT_MAX_SECONDS = env.int("CSV_EXPORT_MAX_SECONDS", default=30 * 60)

# Celery. The default broker keeps its queue in files under var/, so the worker,
# beat and the web server cooperate with no broker server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue = VAR_DIR / "celery" / "queue"
    _queue.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")
# How often the settlements' usage deltas are folded into the hourly rollups.
USAGE_FOLD_SECONDS = env.float("USAGE_FOLD_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE = {
    "expire-lots": {"task": "billing.tasks.lots_expire_due", "schedule": 60.0},
    "sweep-stale-holds": {"task": "billing.tasks.holds_sweep_stale", "schedule": 60.0},
    "auto-top-up": {"task": "billing.tasks.autotopup_sweep", "schedule": 60.0},
    # Self-service refunds Stripe's webhook has not ended: Stripe is asked.
    "resolve-self-refunds": {
        "task": "billing.tasks.self_refunds_resolve",
        "schedule": crontab(minute="*/5"),
    },
    # Low-balance and key usage alerts: find the due ones, queue their emails.
    "alerts": {"task": "alerts.tasks.alerts_scan", "schedule": 60.0},
    # Referral rewards of top-ups whose task was lost or Stripe did not answer.
    "referral-rewards": {
        "task": "referrals.tasks.referral_rewards_sweep",
        "schedule": crontab(minute="*/15"),
    },
    # Gift cards paid for a recipient whose email task was lost: sent again.
    "gift-card-emails": {
        "task": "gifts.tasks.gift_cards_email_unsent",
        "schedule": crontab(minute="*/10"),
    },
    # AI insurance: yesterday's covered requests paid, one lot per account.
    "insurance-payouts": {
        "task": "insurance.tasks.insurance_pay_yesterday",
        "schedule": crontab(hour=1, minute=15),
    },
    "reconcile-payments": {
        "task": "billing.tasks.payments_reconcile",
        "schedule": crontab(minute="*/15"),
    },
    "reconcile-ledger": {
        "task": "billing.tasks.ledger_reconcile",
        "schedule": crontab(hour=3, minute=17),
    },
    # Request logs: the months ahead made, the days past retention deleted,
    # the hourly rollups checked against the logs; bodies past their days.
    "request-log-partitions": {
        "task": "proxy.tasks.requestlog_partitions_ensure",
        "schedule": crontab(hour=2, minute=7),
    },
    "request-log-retention": {
        "task": "proxy.tasks.requestlog_retain",
        "schedule": crontab(hour=2, minute=37),
    },
    # What the settlement batches appended, added to the hourly rollups.
    "fold-usage-deltas": {
        "task": "proxy.tasks.usage_fold",
        "schedule": USAGE_FOLD_SECONDS,
        "options": {"expires": 30},
    },
    "reconcile-usage-rollups": {
        "task": "proxy.tasks.rollups_reconcile",
        "schedule": crontab(hour=3, minute=47),
    },
    "expire-request-bodies": {
        "task": "proxy.tasks.request_bodies_expire",
        "schedule": crontab(minute=23),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The Stripe library logs every request at INFO.
        "stripe": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
