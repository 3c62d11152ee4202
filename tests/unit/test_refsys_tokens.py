"""Tokens: signing, expiry, forgery detection, strict canonical decoding, the required key."""

from __future__ import annotations

import base64
import hmac
import inspect
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reference_system import tokens
from reference_system.tokens import (
    MAX_PERSON_ID,
    MAX_TIME,
    Claims,
    TokenKeyError,
    issue,
    load_key,
    sign,
    verify,
)

KEY = b"unit-test-key-0123456789abcdef-0123456789"
NOW = 1_700_000_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(payload: bytes, key: bytes = KEY) -> str:
    """A token over arbitrary payload bytes, correctly signed: what a key holder (or a
    bug) could produce, which the canonical checks must still refuse."""
    text = _b64(payload)
    return text + "." + _b64(hmac.digest(key, text.encode(), "sha256"))


def test_fresh_token_is_valid_with_claims() -> None:
    token = issue(42, "yellow", 1_600_000_000, NOW, 600, KEY)
    verdict = verify(token, KEY, NOW + 1)
    assert verdict.status == "valid"
    assert verdict.claims == Claims(42, "yellow", 1_600_000_000, NOW, NOW + 600)


def test_expiry_is_exclusive() -> None:
    token = issue(1, "green", 0, NOW, 600, KEY)
    assert verify(token, KEY, NOW + 599.9).status == "valid"
    assert verify(token, KEY, NOW + 600).status == "expired"


def test_other_key_is_forged() -> None:
    token = issue(1, "green", 0, NOW, 600, KEY)
    assert verify(token, KEY + b"2", NOW).status == "forged"


def test_red_cannot_be_turned_green() -> None:
    token = issue(7, "red", 0, NOW, 600, KEY)
    forged = sign(Claims(7, "green", 0, NOW, NOW + 600), b"guess")
    assert verify(token, KEY, NOW).claims.colour == "red"  # type: ignore[union-attr]
    swapped = forged.split(".")[0] + "." + token.split(".")[1]
    assert verify(swapped, KEY, NOW).status == "forged"


def test_expired_forgery_is_forged_not_expired() -> None:
    forged = sign(Claims(1, "green", 0, 0, 1), b"guess")
    assert verify(forged, KEY, NOW).status == "forged"


@pytest.mark.parametrize("junk", ["", ".", "a.b", "abc", "a.b.c", "é.ü", "x" * 2000])
def test_garbage_is_forged(junk: str) -> None:
    assert verify(junk, KEY, NOW).status == "forged"


@pytest.mark.parametrize("junk", [None, 5, b"a.b", ["a.b"]])
def test_non_strings_are_forged(junk: object) -> None:
    assert verify(junk, KEY, NOW).status == "forged"  # type: ignore[arg-type]


# -- canonical encoding: one token, one spelling


def _reencodings(token: str) -> dict[str, str]:
    """Other spellings of the same bytes that a lenient base64 decoder accepts."""
    payload, mac = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    def alt_tails(text: str) -> list[str]:
        # the same bytes with non-zero unused bits in the last character
        unused = {2: 0x0F, 3: 0x03}[len(text) % 4]
        value = alphabet.index(text[-1]) & ~unused
        return [text[:-1] + alphabet[value | bits] for bits in range(1, unused + 1)][:3]

    std = str.maketrans("-_", "+/")
    out = {
        "payload padded": payload + "=" * (-len(payload) % 4 or 4) + "." + mac,
        "signature padded": payload + "." + mac + "=",
        "signature padded twice": payload + "." + mac + "==",
        "standard alphabet": token.translate(std),
        "standard alphabet in the signature": payload + "." + mac.translate(std),
        "space inside the payload": payload[:5] + " " + payload[5:] + "." + mac,
        "newline at the end": token + "\n",
        "four spaces in the signature": payload + "." + mac[:8] + "    " + mac[8:],
        "newlines in the signature": payload + "." + mac[:20] + "\r\n\r\n" + mac[20:],
        "stray bits in the payload's last character": alt_tails(payload)[0] + "." + mac,
    }
    for i, tail in enumerate(alt_tails(mac)):
        out[f"stray bits in the signature's last character ({i + 1})"] = payload + "." + tail
    return out


def _token_with_specials() -> str:
    """A token whose base64url uses '-' and '_' and does not end on a 3-byte boundary."""
    for pid in range(1, 10_000):
        token = issue(pid, "green", 1_641_254_400, NOW, 600, KEY)
        payload = token.split(".")[0]
        if "-" in token and "_" in token and len(payload) % 4 in (2, 3):
            return token
    raise AssertionError("no such token")


@pytest.mark.parametrize("name", sorted(_reencodings(_token_with_specials())))
def test_no_reencoding_of_a_valid_token_verifies(name: str) -> None:
    token = _token_with_specials()
    other = _reencodings(token)[name]
    assert other != token
    assert verify(other, KEY, NOW).status == "forged"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"p": 5, "c": "green", "a": 0, "i": 1700000000, "e": 1700000600}',  # spaces
        b'{"c":"green","p":5,"a":0,"i":1700000000,"e":1700000600}',  # key order
        b'{"p":5,"c":"green","a":0,"i":1700000000,"e":1700000600,"x":1}',  # extra key
        b'{"p":5,"c":"green","a":0,"i":1700000000,"e":1700000600,"p":5}',  # duplicate
        b'{"p":5.0,"c":"green","a":0,"i":1700000000,"e":1700000600}',  # float id
        b'{"p":05,"c":"green","a":0,"i":1700000000,"e":1700000600}',  # leading zero
        b'{"p":"5","c":"green","a":0,"i":1700000000,"e":1700000600}',  # string id
        b'{"p":true,"c":"green","a":0,"i":1700000000,"e":1700000600}',  # bool id
        b'{"p":0,"c":"green","a":0,"i":1700000000,"e":1700000600}',  # id 0
        b'{"p":-5,"c":"green","a":0,"i":1700000000,"e":1700000600}',  # negative id
        b'{"p":2147483648,"c":"green","a":0,"i":1700000000,"e":1700000600}',  # > int4
        b'{"p":5,"c":"blue","a":0,"i":1700000000,"e":1700000600}',  # unknown colour
        b'{"p":5,"c":"GREEN","a":0,"i":1700000000,"e":1700000600}',  # case
        b'{"p":5,"c":1,"a":0,"i":1700000000,"e":1700000600}',  # colour not a string
        b'{"p":5,"c":"green","a":-1,"i":1700000000,"e":1700000600}',  # negative time
        b'{"p":5,"c":"green","a":0,"i":1700000000,"e":99999999999999}',  # far future
        b'{"p":5,"c":"green","a":0,"i":1700000600,"e":1700000000}',  # expires first
        b'{"p":5,"c":"green","a":0,"i":1700000000,"e":1700000000}',  # zero lifetime
        b'{"p":5,"c":"green","a":0,"i":1700000000,"e":1700000600}\n',  # trailing newline
        b'{"p":5,"c":"green","a":0,"i":1700000000}',  # missing key
        b'[5,"green",0,1700000000,1700000600]',  # not an object
        b"\xff\xfe",  # not JSON
    ],
)
def test_signed_but_non_canonical_or_out_of_range_payload_is_forged(payload: bytes) -> None:
    assert verify(sign_raw(payload), KEY, NOW).status == "forged"


def test_the_canonical_payload_signed_raw_is_valid() -> None:
    payload = b'{"p":5,"c":"green","a":0,"i":1700000000,"e":1700000600}'
    assert sign_raw(payload) == issue(5, "green", 0, NOW, 600, KEY)
    assert verify(sign_raw(payload), KEY, NOW).status == "valid"


@pytest.mark.parametrize(
    "claims",
    [
        Claims(0, "green", 0, NOW, NOW + 1),
        Claims(MAX_PERSON_ID + 1, "green", 0, NOW, NOW + 1),
        Claims(1, "blue", 0, NOW, NOW + 1),
        Claims(1, "green", -1, NOW, NOW + 1),
        Claims(1, "green", 0, NOW, NOW),
        Claims(1, "green", 0, NOW, MAX_TIME + 1),
    ],
)
def test_signer_refuses_out_of_range_claims(claims: Claims) -> None:
    with pytest.raises(ValueError, match="cannot sign"):
        sign(claims, KEY)


# -- no mutation of a valid token verifies unless it is byte-identical

claims_st = st.builds(
    Claims,
    person_id=st.integers(1, MAX_PERSON_ID),
    colour=st.sampled_from(tokens.COLOURS),
    status_asof=st.integers(0, MAX_TIME),
    issued_at=st.integers(0, MAX_TIME - 10**6),
    expires_at=st.just(0),
).map(lambda c: Claims(c.person_id, c.colour, c.status_asof, c.issued_at, c.issued_at + 600))

WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2028"]


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    kind = draw(
        st.sampled_from(
            ["bitflip", "truncate", "pad", "alphabet", "whitespace", "insert", "tailbits", "case"]
        )
    )
    if kind == "bitflip":
        raw = bytearray(token.encode())
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
        return raw.decode("latin-1")
    if kind == "truncate":
        cut = draw(st.integers(0, len(token) - 1))
        return token[:cut] if draw(st.booleans()) else token[len(token) - cut :]
    if kind == "pad":
        payload, mac = token.split(".")
        pads = "=" * draw(st.integers(1, 3))
        where = draw(st.sampled_from(["payload", "mac", "both"]))
        return (
            (payload + (pads if where != "mac" else ""))
            + "."
            + (mac + (pads if where != "payload" else ""))
        )
    if kind == "alphabet":
        table = draw(
            st.sampled_from(
                [str.maketrans("-_", "+/"), str.maketrans("-", "+"), str.maketrans("_", "/")]
            )
        )
        return token.translate(table)
    if kind == "whitespace":
        i = draw(st.integers(0, len(token)))
        return token[:i] + draw(st.sampled_from(WHITESPACE)) + token[i:]
    if kind == "insert":
        i = draw(st.integers(0, len(token)))
        return token[:i] + draw(st.sampled_from([*"=.+/-_A0aZz%", "\x00"])) + token[i:]
    if kind == "tailbits":
        part = draw(st.sampled_from([0, 1]))
        pieces = token.split(".")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        text = pieces[part]
        value = alphabet.index(text[-1]) ^ draw(st.integers(1, 63))
        pieces[part] = text[:-1] + alphabet[value]
        return ".".join(pieces)
    i = draw(st.integers(0, len(token) - 1))
    return token[:i] + token[i].swapcase() + token[i + 1 :]


@given(data=st.data(), claims=claims_st)
@example(data=None, claims=Claims(123, "green", 5, NOW, NOW + 600))
def test_no_mutation_of_a_valid_token_verifies(data: st.DataObject | None, claims: Claims) -> None:
    token = sign(claims, KEY)
    now = claims.issued_at + 1
    assert verify(token, KEY, now).status == "valid"
    if data is None:  # the explicit example: every re-encoding
        candidates = list(_reencodings(token).values()) if len(token.split(".")[0]) % 4 else []
    else:
        candidates = [data.draw(mutations(token))]
    for mutated in candidates:
        verdict = verify(mutated, KEY, now)
        assert verdict.status != "valid" or mutated == token, (mutated, verdict)


@given(st.integers(min_value=0, max_value=200), st.characters(codec="ascii"))
def test_any_single_character_change_is_not_valid(pos: int, ch: str) -> None:
    token = issue(123, "green", 5, NOW, 600, KEY)
    i = pos % len(token)
    mutated = token[:i] + ch + token[i + 1 :]
    assert verify(mutated, KEY, NOW).status != "valid" or mutated == token


# -- the key: required, no constant in the code


def test_there_is_no_built_in_key() -> None:
    assert not hasattr(tokens, "DEFAULT_KEY")
    source = inspect.getsource(tokens)
    assert "test-rig" not in source and "not-secret" not in source
    with pytest.raises(TokenKeyError, match="REFSYS_TOKEN_KEY"):
        load_key(environ={})


def test_key_from_the_environment() -> None:
    assert load_key(environ={"REFSYS_TOKEN_KEY": "k" * 32}) == b"k" * 32


@pytest.mark.parametrize("value", ["", "short", "k" * 31])
def test_missing_or_short_key_is_refused(value: str) -> None:
    with pytest.raises(TokenKeyError, match="32 bytes"):
        load_key(environ={"REFSYS_TOKEN_KEY": value})


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"f" * 40 + b"\n")
    assert load_key(path, environ={"REFSYS_TOKEN_KEY": "e" * 40}) == b"f" * 40
    path.write_bytes(b"f" * 31 + b"\n")
    with pytest.raises(TokenKeyError, match="31 bytes"):
        load_key(path, environ={})
    with pytest.raises(TokenKeyError, match="missing"):
        load_key(tmp_path / "missing", environ={})


@pytest.mark.parametrize(
    ("env", "extra", "needle"),
    [
        ({}, [], "no token signing key: set REFSYS_TOKEN_KEY or pass --token-key-file"),
        ({"REFSYS_TOKEN_KEY": "too-short"}, [], "REFSYS_TOKEN_KEY is 9 bytes, too short"),
        ({}, ["--token-key-file", "/nonexistent/key"], "token key file '/nonexistent/key'"),
    ],
)
def test_app_refuses_to_start_without_a_usable_key(
    env: dict[str, str], extra: list[str], needle: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "REFSYS_TOKEN_KEY"}
    environ.update(env)
    cmd = [sys.executable, "-m", "reference_system.app", "--port", "1", "--postgres"]
    cmd += ["127.0.0.1:1", "--redis", "127.0.0.1:1", "--profile", "hardened", *extra]
    root = Path(__file__).resolve().parents[2]  # this checkout's reference_system
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=environ, timeout=30, cwd=root, check=False
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reference_system.app: "), done.stderr
    assert needle in lines[0]


def test_app_builds_with_a_key_file(tmp_path: Path) -> None:
    from reference_system.app import build

    path = tmp_path / "key"
    path.write_bytes(b"z" * 32)
    args = ["--port", "1", "--postgres", "127.0.0.1:1", "--redis", "127.0.0.1:1"]
    args += ["--profile", "naive", "--token-key-file", str(path), "--spool-dir", str(tmp_path)]
    service, _ = build(args)
    assert service.key == b"z" * 32


def test_payload_json_is_what_orjson_writes() -> None:
    """The canonical form is the signer's compact JSON, byte for byte."""
    token = issue(9, "red", 3, NOW, 60, KEY)
    raw = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert raw == orjson.dumps({"p": 9, "c": "red", "a": 3, "i": NOW, "e": NOW + 60})
