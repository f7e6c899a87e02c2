"""Sign-in links: a page address with a bearer token in its fragment (`#token=...`).

Browsers never send the fragment to a server, so the token reaches no access log, proxy or
Referer header; the page's script reads it (static/session.js).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlencode

from service.auth import mint_token
from service.domain.users import Role
from service.models import Job, JobState

OPS_PATH = "/ops"
DEFAULT_LINK_TTL = timedelta(hours=12)
GRAFANA_DASHBOARDS = (
    ("rift-queue-overview", "Queue overview"),
    ("rift-proof-verification", "Proof verification"),
)


def rift_page_path(rift_id: str) -> str:
    return f"/rifts/{quote(rift_id, safe='')}"


def sign_in_link(
    public_url: str,
    path: str,
    user_id: str,
    role: Role,
    secret: str,
    *,
    ttl: timedelta = DEFAULT_LINK_TTL,
) -> str:
    """A link that opens path signed in as user_id, until the token expires."""
    token = mint_token(user_id, role, secret, ttl=ttl)
    return f"{public_url.rstrip('/')}{path}#token={token}"


@dataclass(frozen=True)
class ConsoleLinks:
    """Where the console sends operators: Grafana's dashboards, a job's Sentry event."""

    grafana_url: str
    sentry_issues_url: str | None

    def dashboards(self) -> list[tuple[str, str]]:
        base = self.grafana_url.rstrip("/")
        return [(f"{base}/d/{uid}", title) for uid, title in GRAFANA_DASHBOARDS]

    def sentry_for(self, job: Job) -> str | None:
        # A job is reported to Sentry once, when it finally fails, tagged with its id.
        if not self.sentry_issues_url or job.state not in (JobState.FAILED, JobState.DEAD):
            return None
        return f"{self.sentry_issues_url}?{urlencode({'query': f'job_id:{job.id}'})}"
