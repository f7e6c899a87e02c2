"""Who is looking at a page: the bearer token, or the page cookie it was exchanged for.

A sign-in link carries the bearer token in the URL fragment, which browsers never send to
a server, so it reaches no access log, proxy or Referer. The page's script keeps it in
sessionStorage and trades it once (POST /session, bearer header) for a short-lived,
HttpOnly, SameSite=Strict cookie. The cookie is a JWT of its own audience: it renders
pages and downloads files (reads), and the API refuses it as a bearer token, so nothing
that changes state can be driven by a cookie, which is what makes the console CSRF-proof.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import falcon
import jwt

from service.auth import ALGORITHM, LEEWAY_S, user_from_header
from service.domain.errors import Unauthenticated
from service.domain.users import Role, User

PAGE_COOKIE = "rift_page"
PAGE_AUDIENCE = "rift-pages"
PAGE_SESSION_MAX_S = 3600


def _bearer_expiry(header: str, secret: str) -> datetime:
    token = header.partition(" ")[2].strip()
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], leeway=LEEWAY_S)
    return datetime.fromtimestamp(int(claims["exp"]), UTC)


def open_page_session(req: falcon.Request, resp: falcon.Response, secret: str) -> User:
    """Trade the request's bearer token for the page cookie; never outlive the token."""
    header = req.get_header("Authorization")
    user = user_from_header(header, secret)
    assert header is not None  # user_from_header refuses a missing header
    now = datetime.now(UTC)
    expires = min(_bearer_expiry(header, secret), now + timedelta(seconds=PAGE_SESSION_MAX_S))
    claims = {"sub": user.id, "role": user.role.value, "aud": PAGE_AUDIENCE, "exp": expires}
    resp.set_cookie(
        PAGE_COOKIE,
        jwt.encode(claims, secret, algorithm=ALGORITHM),
        max_age=max(1, int((expires - now).total_seconds())),
        path="/",
        # Behind a TLS-terminating proxy the app sees http; the proxy's header says https.
        secure="https" in (req.scheme, req.forwarded_scheme),
        http_only=True,
        same_site="Strict",
    )
    return user


def close_page_session(resp: falcon.Response) -> None:
    """Forget the page cookie (sign out)."""
    resp.unset_cookie(PAGE_COOKIE, path="/")


def _cookie_user(req: falcon.Request, secret: str) -> User | None:
    values = req.get_cookie_values(PAGE_COOKIE) or []
    for value in values:
        try:
            claims = jwt.decode(
                value,
                secret,
                algorithms=[ALGORITHM],
                audience=PAGE_AUDIENCE,
                leeway=LEEWAY_S,
                options={"require": ["sub", "exp", "aud"]},
            )
            return User(id=str(claims["sub"]), role=Role(claims.get("role", "user")))
        except (jwt.InvalidTokenError, ValueError):
            continue
    return None


def page_viewer(req: falcon.Request, secret: str) -> User | None:
    """The bearer token's user when a header is sent, else the page cookie's, else None."""
    if req.get_header("Authorization"):
        try:
            return user_from_header(req.get_header("Authorization"), secret)
        except Unauthenticated:
            return None
    return _cookie_user(req, secret)


def reader(req: falcon.Request, secret: str) -> User:
    """The viewer of a read-only request (page, download), or 401 saying how to sign in."""
    user = page_viewer(req, secret)
    if user is None:
        raise Unauthenticated("send Authorization: Bearer <token>, or open a sign-in link first")
    return user
