"""Signed passes: key rotation, forgery, tampering; queue tickets and tokens."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.passes import (
    AdmissionToken,
    ExpiredPass,
    QueueTicket,
    WrongPass,
    read_ticket,
    read_token,
    sign_ticket,
    sign_token,
    ticket_id_for,
    token_id_for,
)
from gateway.signing import InvalidPass, Keyring

OLD = Keyring({"k1": b"old-secret-0123456789"}, "k1")
ROTATED = Keyring(
    {"k2": b"new-secret-0123456789", "k1": b"old-secret-0123456789"}, "k2"
)
RETIRED = Keyring({"k2": b"new-secret-0123456789"}, "k2")
TOKEN = AdmissionToken("t1", "show-1", "buyer-1", "dev-1", 4, 10_000)
TICKET = QueueTicket("q1", "show-1", "buyer-1", "dev-1", 1_000, 90_000)


def test_a_pass_signed_by_the_old_key_verifies_when_the_ring_rotated() -> None:
    text = sign_token(OLD, TOKEN)

    assert read_token(ROTATED, text, "show-1", 5_000, 0) == TOKEN


def test_a_pass_is_refused_when_its_key_was_retired() -> None:
    text = sign_token(OLD, TOKEN)

    with pytest.raises(InvalidPass, match="unknown key"):
        read_token(RETIRED, text, "show-1", 5_000, 0)


def test_the_rotated_ring_signs_with_its_new_key() -> None:
    text = sign_ticket(ROTATED, TICKET)

    assert text.split(".")[1] == "k2"
    assert read_ticket(RETIRED, text, "show-1", 5_000, 0) == TICKET


def test_a_pass_signed_with_a_guessed_key_is_refused_when_the_id_matches() -> None:
    forger = Keyring({"k1": b"guessed-secret-000000"}, "k1")

    with pytest.raises(InvalidPass, match="bad signature"):
        read_token(OLD, sign_token(forger, TOKEN), "show-1", 5_000, 0)


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_changed_byte_of_a_pass_is_refused(position: int, value: int) -> None:
    text = sign_token(OLD, TOKEN)
    index = position % len(text)
    changed = text[:index] + chr(33 + value % 94) + text[index + 1 :]
    if changed == text:
        return

    with pytest.raises(InvalidPass):
        read_token(OLD, changed, "show-1", 5_000, 0)


def test_a_raised_quota_is_refused_when_the_payload_is_edited() -> None:
    body, key_id, signature = sign_token(OLD, TOKEN).split(".")
    richer = sign_token(OLD, dataclasses.replace(TOKEN, hold_quota=400))

    with pytest.raises(InvalidPass):
        read_token(OLD, f"{richer.split('.')[0]}.{key_id}.{signature}", "show-1", 0, 0)


def test_a_queue_ticket_is_refused_when_shown_as_an_admission_token() -> None:
    with pytest.raises(InvalidPass, match="another kind"):
        read_token(OLD, sign_ticket(OLD, TICKET), "show-1", 5_000, 0)


def test_a_token_is_refused_when_it_is_for_another_show() -> None:
    with pytest.raises(WrongPass):
        read_token(OLD, sign_token(OLD, TOKEN), "show-2", 5_000, 0)


def test_a_token_passes_within_the_leeway_and_not_beyond_it() -> None:
    text = sign_token(OLD, TOKEN)

    assert read_token(OLD, text, "show-1", 10_000 + 5_000, 5_000) == TOKEN
    with pytest.raises(ExpiredPass):
        read_token(OLD, text, "show-1", 10_000 + 5_001, 5_000)


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c.d", "!!.k1.!!", "e30.k1.AAAA"])
def test_garbage_is_refused_as_an_invalid_pass(garbage: str) -> None:
    with pytest.raises(InvalidPass):
        read_token(OLD, garbage, "show-1", 0, 0)


def test_ids_are_stable_per_buyer_and_show_and_differ_otherwise() -> None:
    secret = b"queue-secret"

    assert ticket_id_for(secret, "s", "b") == ticket_id_for(secret, "s", "b")
    assert ticket_id_for(secret, "s", "b") != ticket_id_for(secret, "s", "c")
    assert ticket_id_for(secret, "s", "b") != ticket_id_for(secret, "t", "b")
    assert token_id_for(secret, "s", "b") != ticket_id_for(secret, "s", "b")


def test_a_keyring_parses_its_setting_with_the_first_key_current() -> None:
    ring = Keyring.parse("new:0123456789abcdef0,old:fedcba98765432100")

    assert ring.current == "new" and set(ring.keys) == {"new", "old"}


@pytest.mark.parametrize("spec", ["nokey", "k:short", "BAD ID:0123456789abcdef0"])
def test_a_keyring_is_refused_when_its_setting_is_bad(spec: str) -> None:
    with pytest.raises(ValueError):
        Keyring.parse(spec)


def test_a_signature_spelled_another_way_is_refused() -> None:
    # base64 decoding forgives stray characters and the unused low bits of the
    # last character; both spell the same MAC, and both must still be refused.
    text = sign_token(OLD, TOKEN)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(text[-1]) ^ 1]

    for changed in (text[:-1] + last, text[:-5] + "!" + text[-5:]):
        with pytest.raises(InvalidPass):
            read_token(OLD, changed, "show-1", 5_000, 0)
