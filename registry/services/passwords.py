"""Password hashing with argon2id; parameters from configuration, rehashed when they change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when no account matches, so a missing account costs the same time.
_dummy_hash = _hasher.hash("registry-dummy-password")

MIN_LENGTH = 12


def configure(time_cost: int, memory_kib: int) -> None:
    """Set the argon2id cost (called once by the app factory)."""
    global _hasher, _dummy_hash
    if (_hasher.time_cost, _hasher.memory_cost) != (time_cost, memory_kib):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _dummy_hash = _hasher.hash("registry-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Check ``password`` against ``stored``, spending the same effort when there is none."""
    try:
        return _hasher.verify(stored or _dummy_hash, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
