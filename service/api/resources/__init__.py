"""HTTP resources: each parses a request, calls the domain, shapes the response."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from service.domain.users import User

#: Who is calling: the bearer token's user, or Unauthenticated (401).
Authenticate = Callable[[falcon.Request], User]
