"""Tokens: the signed, expiring health code a gate can verify offline.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(key, payload))`` where the
payload is compact JSON ``{"p": person_id, "c": colour, "a": status_asof, "i": issued,
"e": expires}`` (times in integer Unix seconds) and base64url is unpadded. Gates call
:func:`verify` with the shared key; the service signs with :func:`sign`. A forged or
malformed token is ``forged``; a genuine one past its expiry is ``expired``.

Verification is strict and canonical: only the exact bytes :func:`sign` produces verify.
Each part must be unpadded base64url in its one canonical spelling (no ``=``, no ``+/``,
no whitespace, no stray bits in the last character), the signature is compared as text,
the payload must be exactly the compact JSON the signer writes (keys in its order, no
spaces), and every claim is range-checked. So a token has exactly one spelling, and a
denylist keyed on the token string cannot be bypassed by re-encoding it.

The key has no default: :func:`load_key` reads ``$REFSYS_TOKEN_KEY`` or a key file and
refuses a missing key or one shorter than :data:`MIN_KEY_BYTES`.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

KEY_ENV = "REFSYS_TOKEN_KEY"
MIN_KEY_BYTES = 32
COLOURS = ("green", "yellow", "red")
MAX_PERSON_ID = 2**31 - 1  # the people table's int4 key
MAX_TIME = 2**32 - 1  # Unix seconds (year 2106); times are 0..MAX_TIME
MAX_TOKEN_CHARS = 1024
_MAC_CHARS = 43  # 32 bytes of HMAC-SHA256, unpadded base64url
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_B64URL_VALUE = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}

Status = Literal["valid", "expired", "forged"]


class TokenKeyError(ValueError):
    """The signing key is missing or too short; the message says how to provide one."""


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


def load_key(
    key_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> bytes:
    """The signing key: the contents of ``key_file`` if given (one trailing newline is
    dropped), else ``$REFSYS_TOKEN_KEY`` (its UTF-8 bytes). Raises :class:`TokenKeyError`
    if there is none or it is shorter than :data:`MIN_KEY_BYTES` bytes."""
    hint = (
        f"expected at least {MIN_KEY_BYTES} bytes, e.g. "
        f"{KEY_ENV}=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    )
    if key_file is not None:
        try:
            key = Path(key_file).read_bytes()
        except OSError as exc:
            raise TokenKeyError(
                f"token key file {os.fspath(key_file)!r}: {exc.strerror or exc}"
            ) from None
        if key.endswith(b"\r\n"):
            key = key[:-2]
        elif key.endswith(b"\n"):
            key = key[:-1]
        where = f"token key file {os.fspath(key_file)!r}"
    else:
        env = os.environ if environ is None else environ
        text = env.get(KEY_ENV)
        if not text:
            raise TokenKeyError(
                f"no token signing key: set {KEY_ENV} or pass --token-key-file; {hint}"
            )
        key = text.encode()
        where = KEY_ENV
    if len(key) < MIN_KEY_BYTES:
        raise TokenKeyError(f"{where} is {len(key)} bytes, too short; {hint}")
    return key


def default_key() -> bytes:
    """The key from ``$REFSYS_TOKEN_KEY`` (:func:`load_key`; there is no built-in key)."""
    return load_key()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64_canonical(text: str) -> bytes | None:
    """The bytes of ``text`` if it is their one canonical unpadded base64url spelling."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    tail = _B64URL_VALUE[ord(text[-1])]
    # The last character's unused low bits must be zero (else 4 spellings, one value).
    if (len(text) % 4 == 2 and tail & 0x0F) or (len(text) % 4 == 3 and tail & 0x03):
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if _b64(data).decode() == text else None


def _payload(claims: Claims) -> bytes:
    return orjson.dumps(
        {
            "p": claims.person_id,
            "c": claims.colour,
            "a": claims.status_asof,
            "i": claims.issued_at,
            "e": claims.expires_at,
        }
    )


def check_claims(claims: Claims) -> str:
    """Why ``claims`` are out of range, or '' if they are fine."""
    for name in ("person_id", "status_asof", "issued_at", "expires_at"):
        value = getattr(claims, name)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} is not an integer"
    if not 1 <= claims.person_id <= MAX_PERSON_ID:
        return f"person_id {claims.person_id} out of range 1..{MAX_PERSON_ID}"
    if claims.colour not in COLOURS:
        return f"unknown colour {claims.colour!r}"
    for name in ("status_asof", "issued_at", "expires_at"):
        value = getattr(claims, name)
        if not 0 <= value <= MAX_TIME:
            return f"{name} {value} out of range 0..{MAX_TIME}"
    if claims.expires_at <= claims.issued_at:
        return f"expires_at {claims.expires_at} is not after issued_at {claims.issued_at}"
    return ""


def sign(claims: Claims, key: bytes) -> str:
    """Serialise and sign ``claims`` (ValueError if they are out of range)."""
    bad = check_claims(claims)
    if bad:
        raise ValueError(f"cannot sign: {bad}")
    payload = _b64(_payload(claims))
    mac = _b64(hmac.digest(key, payload, "sha256"))
    return (payload + b"." + mac).decode()


def issue(person_id: int, colour: str, status_asof: int, now: float, ttl_s: int, key: bytes) -> str:
    """A fresh token for a person's current colour, valid for ``ttl_s`` seconds."""
    issued = int(now)
    return sign(Claims(person_id, colour, status_asof, issued, issued + ttl_s), key)


def verify(token: str, key: bytes, now: float) -> Verdict:
    """Check a token offline: ``valid``, ``expired`` (genuine but too old) or ``forged``.

    Only the exact string :func:`sign` produced for these claims and this key verifies."""
    if (
        not isinstance(token, str)
        or len(token) > MAX_TOKEN_CHARS
        or not token.isascii()
        or token.count(".") != 1
    ):
        return Verdict("forged", None, "not a token: expected '<payload>.<signature>'")
    payload, _, mac = token.partition(".")
    if not _B64URL.fullmatch(payload) or not _B64URL.fullmatch(mac) or len(mac) != _MAC_CHARS:
        return Verdict("forged", None, "not canonical unpadded base64url")
    expected = _b64(hmac.digest(key, payload.encode(), "sha256"))
    if not hmac.compare_digest(mac.encode(), expected):
        return Verdict("forged", None, "signature does not match")
    raw = _unb64_canonical(payload)
    if raw is None:
        return Verdict("forged", None, "signed payload is not canonical base64url")
    try:
        body = orjson.loads(raw)
        claims = Claims(
            person_id=_int(body["p"]),
            colour=body["c"],
            status_asof=_int(body["a"]),
            issued_at=_int(body["i"]),
            expires_at=_int(body["e"]),
        )
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return Verdict("forged", None, "signed payload is malformed")
    if not isinstance(claims.colour, str):
        return Verdict("forged", None, "signed payload is malformed")
    bad = check_claims(claims)
    if bad:
        return Verdict("forged", None, f"signed claims out of range: {bad}")
    if _payload(claims) != raw:
        return Verdict("forged", None, "signed payload is not the canonical JSON")
    if now >= claims.expires_at:
        return Verdict("expired", claims, f"expired at {claims.expires_at}")
    return Verdict("valid", claims)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected int, got {value!r}")
    return value
