"""Tokens: the signed, expiring health code a gate can verify offline.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(key, payload))`` where the
payload is compact JSON ``{"p": person_id, "c": colour, "a": status_asof, "i": issued,
"e": expires}`` (times in integer Unix seconds). Gates call :func:`verify` with the shared
key; the service signs with :func:`sign`. A forged or malformed token is ``forged``; a
genuine one past its expiry is ``expired``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from dataclasses import dataclass
from typing import Literal

import orjson

KEY_ENV = "REFSYS_TOKEN_KEY"
DEFAULT_KEY = b"refsys-test-rig-key-not-secret"
COLOURS = ("green", "yellow", "red")

Status = Literal["valid", "expired", "forged"]


@dataclass(frozen=True)
class Claims:
    """What a token says: whose code, which colour as of when, and its validity window."""

    person_id: int
    colour: str
    status_asof: int
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify`; ``claims`` is set unless the token is forged."""

    status: Status
    claims: Claims | None
    reason: str = ""


def default_key() -> bytes:
    """The signing key: ``$REFSYS_TOKEN_KEY`` if set, else the deterministic test-rig key."""
    env = os.environ.get(KEY_ENV)
    return env.encode() if env else DEFAULT_KEY


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: Claims, key: bytes) -> str:
    """Serialise and sign ``claims``."""
    payload = _b64(
        orjson.dumps(
            {
                "p": claims.person_id,
                "c": claims.colour,
                "a": claims.status_asof,
                "i": claims.issued_at,
                "e": claims.expires_at,
            }
        )
    )
    mac = _b64(hmac.digest(key, payload, "sha256"))
    return (payload + b"." + mac).decode()


def issue(person_id: int, colour: str, status_asof: int, now: float, ttl_s: int, key: bytes) -> str:
    """A fresh token for a person's current colour, valid for ``ttl_s`` seconds."""
    issued = int(now)
    return sign(Claims(person_id, colour, status_asof, issued, issued + ttl_s), key)


def verify(token: str, key: bytes, now: float) -> Verdict:
    """Check a token offline: ``valid``, ``expired`` (genuine but too old) or ``forged``."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 1024:
        return Verdict("forged", None, "not a token: expected '<payload>.<signature>'")
    payload, _, mac = token.partition(".")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        return Verdict("forged", None, "signature is not base64url")
    if not hmac.compare_digest(given, hmac.digest(key, payload.encode(), "sha256")):
        return Verdict("forged", None, "signature does not match")
    try:
        body = orjson.loads(_unb64(payload))
        claims = Claims(
            person_id=_int(body["p"]),
            colour=str(body["c"]),
            status_asof=_int(body["a"]),
            issued_at=_int(body["i"]),
            expires_at=_int(body["e"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return Verdict("forged", None, "signed payload is malformed")
    if claims.colour not in COLOURS:
        return Verdict("forged", None, f"unknown colour {claims.colour!r}")
    if now >= claims.expires_at:
        return Verdict("expired", claims, f"expired at {claims.expires_at}")
    return Verdict("valid", claims)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected int, got {value!r}")
    return value
