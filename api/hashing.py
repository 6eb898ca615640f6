"""Secrets: how passwords and tokens are made and checked — never stored in clear.

- Passwords: argon2id (``argon2-cffi``'s defaults, RFC 9106's second recommended profile), slow
  on purpose so a stolen table cannot be brute-forced cheaply. A sign-in with an unknown user
  still verifies against a fixed hash, so the answer's timing does not tell which usernames
  exist. Hashes made with older parameters are re-hashed at the next good sign-in.
- Tokens: 32 random bytes (256 bits, ``secrets``), shown once as ``hc_`` + URL-safe base64;
  stored as their SHA-256. A fast hash is right here: the secret cannot be guessed, so there is
  nothing for a slow hash to protect, and every request looks a token up.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "hash_password",
    "hash_token",
    "needs_rehash",
    "new_token",
    "verify_password",
]

_HASHER = PasswordHasher()
_TOKEN_PREFIX = "hc_"
# Verified against when the user does not exist, so both paths cost one argon2 verification.
_DUMMY_HASH = _HASHER.hash("not a password anyone has")
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    """hash_password is the argon2id hash (with its salt and parameters) of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """verify_password tells whether ``password`` matches; False when there is no hash."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """needs_rehash: the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored_hash)


def new_token() -> str:
    """new_token is a fresh bearer token (shown once, never stored)."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """hash_token is what the database keeps of a token: its SHA-256."""
    return hashlib.sha256(token.encode()).digest()
