"""One settings object, read from the environment in one place.

Each field declares its environment variable, default and meaning once (in its metadata);
`from_env` reads them, `to_env` writes them for a child process, and a test checks that
the README's configuration table lists every one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from service.verification.thresholds import VerificationThresholds

MIB = 1024 * 1024
ENV_METADATA_KEY = "env"


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class EnvVar:
    """The environment variable a setting is read from, and what the README says of it."""

    name: str
    doc: str
    #: How the README shows a default that from_env works out (None: the field's default).
    shown_default: str | None = None


def env_var(name: str, doc: str, *, shown_default: str | None = None) -> dict[str, EnvVar]:
    """Field metadata naming the setting's environment variable."""
    return {ENV_METADATA_KEY: EnvVar(name, doc, shown_default)}


AMQP_SCHEMES = ("amqp://", "amqps://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redis_url_from_env(environ: Mapping[str, str]) -> str:
    """Return REDIS_URL, else build one from the seed's REDIS_HOST/PORT/PASSWORD/DB."""
    if environ.get("REDIS_URL"):
        return environ["REDIS_URL"]
    host = environ.get("REDIS_HOST", "127.0.0.1")
    port = environ.get("REDIS_PORT", "6379")
    db = environ.get("REDIS_DB", "0")
    password = environ.get("REDIS_PASSWORD", "")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


DEVELOPMENT = "development"
PRODUCTION = "production"
MIN_SECRET_BYTES = 32
# Public: anyone can read them here, so they sign nothing outside development.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789"  # noqa: S105
DEV_LICENSE_KEY_SECRET = "dev-only-license-key-secret-change-me-0123456789"  # noqa: S105
SECRET_VARIABLES = {"JWT_SECRET": DEV_JWT_SECRET, "LICENSE_KEY_SECRET": DEV_LICENSE_KEY_SECRET}


def require_real_secrets(environ: Mapping[str, str], environment: str) -> None:
    """Refuse to start outside development without both secrets of MIN_SECRET_BYTES."""
    problems = []
    for name, public_value in SECRET_VARIABLES.items():
        value = environ.get(name, "")
        if not value:
            problems.append(f"{name} is not set")
        elif value == public_value:
            problems.append(f"{name} is the public development value")
        elif len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{name} is {len(value.encode())} bytes")
    if problems:
        raise SettingsError(
            f"JWT_SECRET and LICENSE_KEY_SECRET must be set to random values of at least "
            f"{MIN_SECRET_BYTES} bytes each unless RIFT_ENV=development (RIFT_ENV is "
            f"{environment!r}; {', '.join(problems)}). Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


def _parse(kind: str, name: str, raw: str) -> Any:
    """Convert raw to the field's annotated type (annotations are strings here)."""
    if kind in ("str", "str | None"):
        return raw
    if kind == "Path":
        return Path(raw)
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if kind == "bool":
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    raise AssertionError(f"no parser for settings of type {kind}")


def _format(value: Any) -> str:
    """Write a setting's value the way _parse reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Settings:
    """Everything the API, the workers and the scheduler are configured by."""

    database_url: str = field(
        metadata=env_var(
            "DATABASE_URL",
            "SQLAlchemy URL; `postgresql+psycopg://...` for PostgreSQL",
            shown_default="sqlite:///var/rift.sqlite3",
        )
    )
    redis_url: str = field(
        metadata=env_var(
            "REDIS_URL",
            "broker URL; wins over the `REDIS_*` variables",
            shown_default="built from the four below",
        )
    )
    data_dir: Path = field(
        metadata=env_var(
            "RIFT_DATA_DIR",
            "blobs under `blobs/`, quarantined files under `quarantine/`",
            shown_default="var",
        )
    )
    jwt_secret: str = field(
        metadata=env_var(
            "JWT_SECRET",
            "HS256 secret for bearer tokens; at least 32 bytes outside development",
            shown_default="development value in development; else required",
        )
    )
    license_key_secret: str = field(
        metadata=env_var(
            "LICENSE_KEY_SECRET",
            "at least 32 bytes; encrypts license keys and keys their fingerprints",
            shown_default="development value in development; else required",
        )
    )
    broker_url: str | None = field(
        default=None,
        metadata=env_var(
            "BROKER_URL",
            "`amqp://user:password@host:5672/vhost` selects RabbitMQ; a `redis://` URL, or"
            " unset, selects Redis (there, or at `REDIS_URL`)",
            shown_default="unset",
        ),
    )
    environment: str = field(
        default="development",
        metadata=env_var(
            "RIFT_ENV",
            "only `development` runs on the public development secrets and logs for a "
            "console; anything else (unset included) requires both secrets below and logs JSON",
            shown_default="production",
        ),
    )
    log_format: str = field(
        default="console",
        metadata=env_var(
            "LOG_FORMAT", "log renderer", shown_default="json (console in development)"
        ),
    )
    max_file_bytes: int = field(
        default=50 * MIB,
        metadata=env_var("MAX_FILE_BYTES", "per-file limit, enforced while streaming (413)"),
    )
    max_request_bytes: int = field(
        default=120 * MIB,
        metadata=env_var("MAX_REQUEST_BYTES", "whole-request limit, checked before reading (413)"),
    )
    max_files_per_proof: int = field(
        default=10, metadata=env_var("MAX_FILES_PER_PROOF", "files in one submission")
    )
    clamd_address: str = field(
        default="tcp://127.0.0.1:3310",
        metadata=env_var("CLAMD_ADDRESS", "clamd, `tcp://host:port` or `unix:///path/clamd.ctl`"),
    )
    scan_timeout_s: float = field(
        default=30.0, metadata=env_var("SCAN_TIMEOUT_S", "per socket operation with clamd")
    )
    sentry_dsn: str | None = field(
        default=None,
        metadata=env_var("SENTRY_DSN", "enables Sentry (API 5xx, jobs that finally failed)"),
    )
    url_reachability_check: bool = field(
        default=False,
        metadata=env_var(
            "URL_REACHABILITY_CHECK",
            "probe URLs (SSRF-safe: resolve once, pin, re-check redirects)",
        ),
    )
    # Verification thresholds that operators tune (DESIGN section 3 defaults).
    review_subtotal_minor: int = field(
        default=1_000_000,
        metadata=env_var("REVIEW_SUBTOTAL_MINOR", "subtotals above this always go to review"),
    )
    auto_release_hours: int = field(
        default=72, metadata=env_var("AUTO_RELEASE_HOURS", "hours from approval to release")
    )
    auto_release_hours_digital: int = field(
        default=48,
        metadata=env_var("AUTO_RELEASE_HOURS_DIGITAL", "the same for digital goods"),
    )
    # Job system.
    relay_interval_s: float = field(
        default=2.0, metadata=env_var("RELAY_INTERVAL_S", "how often the outbox relay runs")
    )
    relay_grace_s: float = field(
        default=5.0,
        metadata=env_var("RELAY_GRACE_S", "how old an undispatched job must be for the relay"),
    )
    job_retention_days: int = field(
        default=30, metadata=env_var("JOB_RETENTION_DAYS", "finished job records kept this long")
    )
    quarantine_retention_days: int = field(
        default=90,
        metadata=env_var("QUARANTINE_RETENTION_DAYS", "quarantined files kept this long"),
    )
    # Workers stamp their heartbeat every few seconds from a thread of their own
    # (actors/heartbeat.py), so a short timeout is safe: a killed worker's messages come
    # back this long after the kill (the scheduler runs the redelivery every second).
    broker_heartbeat_timeout_ms: int = field(
        default=15_000,
        metadata=env_var(
            "BROKER_HEARTBEAT_TIMEOUT_MS",
            "after this silence a dead worker's messages are redelivered",
        ),
    )
    reconcile_interval_s: float = field(
        default=5.0,
        metadata=env_var(
            "RECONCILE_INTERVAL_S", "how often the reconciler looks for lost and poison jobs"
        ),
    )
    reconcile_queued_after_s: float = field(
        default=30.0,
        metadata=env_var(
            "RECONCILE_QUEUED_AFTER_S", "a QUEUED job not started by then is dispatched again"
        ),
    )
    # Out of a million broker commands, how many also requeue messages of dead workers.
    broker_maintenance_chance: int = field(
        default=10_000,
        metadata=env_var(
            "BROKER_MAINTENANCE_CHANCE",
            "per million broker calls, how many also run that redelivery",
        ),
    )
    # 8 retries from 1 s back off for 4-8 min in all: a clamd or database restart fits in it.
    max_retries: int = field(default=8, metadata=env_var("JOB_MAX_RETRIES", "retry policy"))
    min_backoff_ms: int = field(
        default=1_000, metadata=env_var("JOB_MIN_BACKOFF_MS", "first retry's back-off")
    )
    max_backoff_ms: int = field(
        default=300_000, metadata=env_var("JOB_MAX_BACKOFF_MS", "longest retry back-off")
    )
    collector_host: str = field(
        default="127.0.0.1", metadata=env_var("COLLECTOR_HOST", "the scheduler's metrics endpoint")
    )
    collector_port: int = field(
        default=9300, metadata=env_var("COLLECTOR_PORT", "the scheduler's metrics port")
    )
    # Pages: where operators' links point (sign-in links, Grafana, Sentry).
    public_url: str = field(
        default="http://127.0.0.1:8000",
        metadata=env_var("RIFT_PUBLIC_URL", "this service's address in links it prints"),
    )
    grafana_url: str = field(
        default="http://127.0.0.1:3000",
        metadata=env_var("GRAFANA_URL", "where Grafana links point"),
    )
    sentry_issues_url: str | None = field(
        default=None, metadata=env_var("SENTRY_ISSUES_URL", "where Sentry links point")
    )
    # Blob store: empty is the local directory under data_dir; s3://bucket/prefix an object store.
    blob_store: str = field(
        default="",
        metadata=env_var(
            "BLOB_STORE",
            "empty: local files under `RIFT_DATA_DIR`; `s3://bucket/prefix`: an object store",
            shown_default="empty",
        ),
    )
    s3_endpoint_url: str | None = field(
        default=None, metadata=env_var("S3_ENDPOINT_URL", "S3-compatible endpoint (unset: AWS)")
    )
    s3_region: str = field(
        default="us-east-1", metadata=env_var("S3_REGION", "object store region")
    )
    s3_access_key_id: str | None = field(
        default=None, metadata=env_var("S3_ACCESS_KEY_ID", "object store credentials")
    )
    s3_secret_access_key: str | None = field(
        default=None, metadata=env_var("S3_SECRET_ACCESS_KEY", "object store credentials")
    )

    def thresholds(self) -> VerificationThresholds:
        """The verification rules' numbers, with the ones operators set from the environment."""
        return VerificationThresholds(
            review_subtotal_above_minor=self.review_subtotal_minor,
            max_file_bytes=self.max_file_bytes,
            url_reachability_check=self.url_reachability_check,
        )

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def uses_rabbitmq(self) -> bool:
        """Whether BROKER_URL selects RabbitMQ; otherwise the broker is Redis at redis_url."""
        return self.broker_url is not None and self.broker_url.startswith(AMQP_SCHEMES)

    @property
    def scratch_dir(self) -> Path:
        """This host's disk for temporary copies of objects (the S3 store's rule reads)."""
        return self.data_dir / "scratch"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (or a mapping standing in for it)."""
        environ = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting, var in env_fields():
            raw = environ.get(var.name, "")
            if raw != "":
                values[setting.name] = _parse(str(setting.type), var.name, raw)
        # The defaults worked out from other settings.
        data_dir = Path(values.get("data_dir", "var")).resolve()
        values["data_dir"] = data_dir
        values.setdefault("database_url", f"sqlite:///{data_dir / 'rift.sqlite3'}")
        values["redis_url"] = redis_url_from_env(environ)
        broker_url = values.get("broker_url")
        if broker_url is not None:
            if broker_url.startswith(REDIS_SCHEMES):
                values["redis_url"] = broker_url
            elif not broker_url.startswith(AMQP_SCHEMES):
                raise SettingsError(
                    "BROKER_URL must start with amqp:// or amqps:// (RabbitMQ) or redis://"
                    f" (Redis), got {broker_url.split(':', 1)[0]!r}"
                )
        # Fail closed: only an explicit development mode runs on the public development
        # secrets; unset, "prod", "Production" or "staging" all need real ones.
        environment = values.get("environment", PRODUCTION).strip().lower()
        values["environment"] = environment
        if environment == DEVELOPMENT:
            values.setdefault("jwt_secret", DEV_JWT_SECRET)
            values.setdefault("license_key_secret", DEV_LICENSE_KEY_SECRET)
        else:
            require_real_secrets(environ, environment)
        values.setdefault("log_format", "console" if environment == DEVELOPMENT else "json")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that make from_env read exactly these settings.

        Every variable is present (unset ones as ""), so nothing a child process inherits
        from its parent's environment changes what it reads.
        """
        return {
            var.name: "" if value is None else _format(value)
            for setting, var in env_fields()
            for value in [getattr(self, setting.name)]
        }


def env_fields() -> Iterator[tuple[Field[Any], EnvVar]]:
    """Every setting read from the environment, with its variable."""
    for setting in fields(Settings):
        var = setting.metadata.get(ENV_METADATA_KEY)
        if isinstance(var, EnvVar):
            yield setting, var


def documented_default(setting: Field[Any], var: EnvVar) -> str:
    """The default as the README's configuration table shows it."""
    if var.shown_default is not None:
        return var.shown_default
    if setting.default is None:
        return "unset"
    if isinstance(setting.default, float):
        return f"{setting.default:g}"
    return _format(setting.default)
