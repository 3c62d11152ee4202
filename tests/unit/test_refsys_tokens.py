"""Tokens: signing, expiry and forgery detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_system.tokens import Claims, issue, sign, verify

KEY = b"k1"
NOW = 1_700_000_000


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
    assert verify(token, b"k2", NOW).status == "forged"


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


def test_unknown_colour_is_forged_even_if_signed() -> None:
    token = sign(Claims(1, "blue", 0, NOW, NOW + 10), KEY)
    assert verify(token, KEY, NOW).status == "forged"


@given(st.integers(min_value=0, max_value=200), st.characters(codec="ascii"))
def test_any_single_character_change_is_not_valid(pos: int, ch: str) -> None:
    token = issue(123, "green", 5, NOW, 600, KEY)
    i = pos % len(token)
    if token[i] == ch:
        return
    mutated = token[:i] + ch + token[i + 1 :]
    assert verify(mutated, KEY, NOW).status != "valid" or (
        mutated.split(".")[0] == token.split(".")[0] and _same_mac(mutated, token)
    )


def _same_mac(a: str, b: str) -> bool:
    # base64 padding bits: a different last character may decode to the same bytes.
    import base64

    def dec(t: str) -> bytes:
        mac = t.split(".")[1]
        return base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))

    try:
        return dec(a) == dec(b)
    except ValueError:
        return False
