"""Who is acting, passed to every service that changes something."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """The person, token or system behind a change, and the request it came in.

    ``role`` is the effective role: a token's own role, which may be lower than its
    owner's. ``label`` is what the audit log shows (an email address: personal data,
    visible to auditors only).
    """

    kind: str  # "user", "token", "system" or "anonymous"
    user_id: int | None = None
    token_id: int | None = None
    role: str | None = None
    organisation_id: int | None = None
    label: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, label: str = "system", request_id: str | None = None) -> Actor:
        return cls(kind="system", label=label, request_id=request_id)

    @classmethod
    def anonymous(cls, request_id: str | None = None) -> Actor:
        return cls(kind="anonymous", request_id=request_id)

    @property
    def is_authenticated(self) -> bool:
        return self.kind in {"user", "token"}

    @property
    def audit_id(self) -> str | None:
        if self.kind == "token":
            return str(self.token_id)
        if self.kind == "user":
            return str(self.user_id)
        return None
