"""Who is calling, and what they may see of a rift."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from service.models import ActorRole, Rift


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def relation_to(self, rift: Rift) -> ActorRole | None:
        """Return the role this user acts in on rift, or None when it is not theirs."""
        if rift.seller_id == self.id:
            return ActorRole.SELLER
        if rift.buyer_id == self.id:
            return ActorRole.BUYER
        if self.is_admin:
            return ActorRole.ADMIN
        return None
