"""Broker password hashes: Mosquitto's own PBKDF2-SHA512 format, computed in Python.

``devices.mqtt_password_hash`` holds ``$7$<iterations>$<salt b64>$<hash b64>`` — exactly the
line ``mosquitto_passwd`` writes, and exactly the ``iterations``/``salt``/``password`` triple the
dynamic-security plugin keeps in its JSON file. One stored value therefore serves both: the
database can rebuild a broker's accounts (``broker.sync``) without ever holding a
password.

Why only 101 iterations (Mosquitto's default): the passwords are 256-bit random secrets made by
``broker.credentials``, so no amount of guessing reaches them and key stretching adds nothing;
and the broker runs PBKDF2 on its single event-loop thread for every CONNECT, so a large count
(OWASP's 210,000 for human passwords) would stall all clients for ~0.1 s per device connect —
minutes after a broker restart with thousands of devices reconnecting.

>>> h = hash_password("s3cret", salt=b"0123456789ab")
>>> h[:40]
'$7$101$MDEyMzQ1Njc4OWFi$OQKxdUx545frVVxg'
>>> verify_password("s3cret", h), verify_password("wrong", h)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["ITERATIONS", "MosquittoHash", "hash_password", "parse_hash", "verify_password"]

ITERATIONS = 101  # mosquitto_passwd's and the dynamic-security plugin's default
_SALT_BYTES = 12  # what both write; the plugin refuses a longer salt


@dataclass(frozen=True)
class MosquittoHash:
    """MosquittoHash is a parsed ``$7$`` hash: what the dynamic-security JSON stores."""

    iterations: int
    salt: bytes
    digest: bytes

    def dynsec_fields(self) -> dict[str, object]:
        """dynsec_fields are the client fields of the plugin's JSON file for this hash."""
        return {
            "password": base64.b64encode(self.digest).decode(),
            "salt": base64.b64encode(self.salt).decode(),
            "iterations": self.iterations,
        }


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """hash_password is the ``$7$`` hash of ``password`` with a fresh 12-byte salt."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def parse_hash(text: str) -> MosquittoHash:
    """parse_hash reads a ``$7$`` hash; ``ValueError`` for anything else."""
    parts = text.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7":
        raise ValueError("not a mosquitto $7$ (PBKDF2-SHA512) hash")
    iterations = int(parts[2])
    salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    if iterations < 1 or not 1 <= len(salt) <= _SALT_BYTES or len(digest) != 64:
        raise ValueError("malformed mosquitto $7$ hash")
    return MosquittoHash(iterations, salt, digest)


def verify_password(password: str, text: str) -> bool:
    """verify_password checks ``password`` against a ``$7$`` hash in constant time."""
    parsed = parse_hash(text)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), parsed.salt, parsed.iterations)
    return hmac.compare_digest(digest, parsed.digest)
