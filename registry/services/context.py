"""Who is acting, passed to every service that changes something."""

from __future__ import annotations

from dataclasses import dataclass

# The longest label the audit log keeps (its actor_label column). The longest the registry
# composes, "<email> (token <name>)" from a 254-character address and a 100-character
# token name, is 363 characters and is kept whole; a longer one (a CLI account's name, a
# system label) keeps its first 399 characters and ends with an ellipsis.
LABEL_MAX_LENGTH = 400
_ELLIPSIS = "\u2026"


def shorten_label(label: str | None) -> str | None:
    """``label`` as the audit log keeps it: at most ``LABEL_MAX_LENGTH`` characters."""
    if label is None or len(label) <= LABEL_MAX_LENGTH:
        return label
    return label[: LABEL_MAX_LENGTH - len(_ELLIPSIS)] + _ELLIPSIS


@dataclass(frozen=True, slots=True)
class Actor:
    """The person, token or system behind a change, and the request it came in.

    ``role`` is the effective role: a token's own role, which may be lower than its
    owner's. ``label`` is what the audit log shows (an email address: personal data,
    visible to auditors only), shortened by ``shorten_label``.
    """

    kind: str  # "user", "token", "system" or "anonymous"
    user_id: int | None = None
    token_id: int | None = None
    role: str | None = None
    organisation_id: int | None = None
    label: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", shorten_label(self.label))

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
