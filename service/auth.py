"""Bearer tokens: HS256 JWTs naming a user id and a role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from service.domain.errors import Unauthenticated
from service.domain.users import Role, User

ALGORITHM = "HS256"
LEEWAY_S = 30
MAX_SUBJECT_CHARS = 64


def user_from_header(header: str | None, secret: str) -> User:
    """Return the caller named by an `Authorization: Bearer <jwt>` header, or raise 401."""
    if not header:
        raise Unauthenticated("send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=[ALGORITHM],
            leeway=LEEWAY_S,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired; get a new one") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("the token is not valid") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("the token names no user (sub)")
    # A user id is stored as buyer, seller and actor (64-character columns): a longer one
    # could never be stored, so it is refused here rather than failing a write later.
    if len(subject) > MAX_SUBJECT_CHARS or not subject.isprintable():
        raise Unauthenticated(
            f"the token's sub must be a user id of at most {MAX_SUBJECT_CHARS} printable characters"
        )
    try:
        role = Role(claims.get("role", "user"))
    except ValueError:
        raise Unauthenticated("the token's role must be 'user' or 'admin'") from None
    return User(id=subject, role=role)


def mint_token(user_id: str, role: Role, secret: str, *, ttl: timedelta) -> str:
    """Sign a token for user_id (development and tests)."""
    now = datetime.now(UTC)
    claims = {"sub": user_id, "role": role.value, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
