"""One settings object, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from service.verification.thresholds import VerificationThresholds

MIB = 1024 * 1024


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def redis_url_from_env(env: Mapping[str, str]) -> str:
    """Return REDIS_URL, else build one from the seed's REDIS_HOST/PORT/PASSWORD/DB."""
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    host = env.get("REDIS_HOST", "127.0.0.1")
    port = env.get("REDIS_PORT", "6379")
    db = env.get("REDIS_DB", "0")
    password = env.get("REDIS_PASSWORD", "")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Everything the API, the workers and the scheduler are configured by."""

    database_url: str
    redis_url: str
    data_dir: Path
    jwt_secret: str
    license_key_secret: str
    environment: str = "development"
    log_format: str = "console"
    max_file_bytes: int = 50 * MIB
    max_request_bytes: int = 120 * MIB
    max_files_per_proof: int = 10
    clamd_address: str = "tcp://127.0.0.1:3310"
    scan_timeout_s: float = 30.0
    sentry_dsn: str | None = None
    url_reachability_check: bool = False
    # Verification thresholds that operators tune (DESIGN section 3 defaults).
    review_subtotal_minor: int = 1_000_000
    auto_release_hours: int = 72
    auto_release_hours_digital: int = 48
    # Job system.
    relay_interval_s: float = 2.0
    relay_grace_s: float = 5.0
    job_retention_days: int = 30
    quarantine_retention_days: int = 90
    broker_heartbeat_timeout_ms: int = 60_000
    # Out of a million broker commands, how many also requeue messages of dead workers.
    broker_maintenance_chance: int = 10_000
    max_retries: int = 5
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 300_000
    collector_host: str = "127.0.0.1"
    collector_port: int = 9300
    # Pages: where operators' links point (sign-in links, Grafana, Sentry).
    public_url: str = "http://127.0.0.1:8000"
    grafana_url: str = "http://127.0.0.1:3000"
    sentry_issues_url: str | None = None
    # Blob store: empty is the local directory under data_dir; s3://bucket/prefix an object store.
    blob_store: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

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
    def scratch_dir(self) -> Path:
        """This host's disk for temporary copies of objects (the S3 store's rule reads)."""
        return self.data_dir / "scratch"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (or a mapping standing in for it)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("RIFT_DATA_DIR", "var")).resolve()
        environment = env.get("RIFT_ENV", "development")
        jwt_secret = env.get("JWT_SECRET", "")
        key_secret = env.get("LICENSE_KEY_SECRET", "")
        if environment == "production" and (not jwt_secret or not key_secret):
            raise SettingsError("JWT_SECRET and LICENSE_KEY_SECRET must be set in production")
        return cls(
            database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'rift.sqlite3'}",
            redis_url=redis_url_from_env(env),
            data_dir=data_dir,
            jwt_secret=jwt_secret or "dev-only-jwt-secret-change-me-0123456789",
            license_key_secret=key_secret or "dev-only-license-key-secret-change-me-0123456789",
            environment=environment,
            log_format=env.get("LOG_FORMAT", "json" if environment == "production" else "console"),
            max_file_bytes=_int(env, "MAX_FILE_BYTES", 50 * MIB),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 120 * MIB),
            max_files_per_proof=_int(env, "MAX_FILES_PER_PROOF", 10),
            clamd_address=env.get("CLAMD_ADDRESS", "tcp://127.0.0.1:3310"),
            scan_timeout_s=_float(env, "SCAN_TIMEOUT_S", 30.0),
            sentry_dsn=env.get("SENTRY_DSN") or None,
            url_reachability_check=_bool(env, "URL_REACHABILITY_CHECK", False),
            review_subtotal_minor=_int(env, "REVIEW_SUBTOTAL_MINOR", 1_000_000),
            relay_interval_s=_float(env, "RELAY_INTERVAL_S", 2.0),
            relay_grace_s=_float(env, "RELAY_GRACE_S", 5.0),
            job_retention_days=_int(env, "JOB_RETENTION_DAYS", 30),
            quarantine_retention_days=_int(env, "QUARANTINE_RETENTION_DAYS", 90),
            broker_heartbeat_timeout_ms=_int(env, "BROKER_HEARTBEAT_TIMEOUT_MS", 60_000),
            broker_maintenance_chance=_int(env, "BROKER_MAINTENANCE_CHANCE", 10_000),
            max_retries=_int(env, "JOB_MAX_RETRIES", 5),
            min_backoff_ms=_int(env, "JOB_MIN_BACKOFF_MS", 1_000),
            max_backoff_ms=_int(env, "JOB_MAX_BACKOFF_MS", 300_000),
            collector_host=env.get("COLLECTOR_HOST", "127.0.0.1"),
            collector_port=_int(env, "COLLECTOR_PORT", 9300),
            public_url=env.get("RIFT_PUBLIC_URL") or "http://127.0.0.1:8000",
            grafana_url=env.get("GRAFANA_URL") or "http://127.0.0.1:3000",
            sentry_issues_url=env.get("SENTRY_ISSUES_URL") or None,
            blob_store=env.get("BLOB_STORE", ""),
            s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
            s3_region=env.get("S3_REGION") or "us-east-1",
            s3_access_key_id=env.get("S3_ACCESS_KEY_ID") or None,
            s3_secret_access_key=env.get("S3_SECRET_ACCESS_KEY") or None,
        )
