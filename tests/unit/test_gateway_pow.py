"""Proof of work: solutions, forged or reused challenges, adaptive difficulty."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.passes import ExpiredPass
from gateway.pow import (
    Challenge,
    difficulty_bits,
    leading_zero_bits,
    read_challenge,
    sign_challenge,
    solve,
    solves,
)
from gateway.signing import InvalidPass, Keyring

RING = Keyring({"k1": b"secret-0123456789abc"}, "k1")
CHALLENGE = Challenge("show-1", "buyer-1", "dev-1", "n1", 8, 60_000)


def test_leading_zero_bits_counts_from_the_first_byte() -> None:
    assert leading_zero_bits(b"\x00\x00") == 16
    assert leading_zero_bits(b"\x00\x0f") == 12
    assert leading_zero_bits(b"\x80\x00") == 0


@settings(max_examples=20)
@given(st.integers(min_value=1, max_value=10), st.text(min_size=1, max_size=20))
def test_a_found_solution_solves_and_meets_the_bits(bits: int, text: str) -> None:
    solution = solve(text, bits)

    assert solves(text, solution, bits)


def test_a_solution_is_refused_for_another_challenge_or_more_bits() -> None:
    text = sign_challenge(RING, CHALLENGE)
    solution = solve(text, 12)
    other = sign_challenge(RING, dataclasses.replace(CHALLENGE, buyer_id="buyer-2"))

    assert solves(text, solution, 12)
    assert not solves(other, solution, 12)
    assert sum(solves(text, f"g{n}", 12) for n in range(1000)) < 5


@pytest.mark.parametrize("solution", ["", "x" * 33])
def test_a_solution_of_a_bad_length_is_refused(solution: str) -> None:
    assert not solves("c", solution, 0)


def test_a_challenge_with_lowered_difficulty_is_refused_as_forged() -> None:
    body, key_id, signature = sign_challenge(RING, CHALLENGE).split(".")
    easier = sign_challenge(RING, dataclasses.replace(CHALLENGE, bits=0))

    with pytest.raises(InvalidPass):
        read_challenge(
            RING, f"{easier.split('.')[0]}.{key_id}.{signature}", "show-1", 0
        )


def test_an_expired_challenge_is_refused() -> None:
    with pytest.raises(ExpiredPass):
        read_challenge(RING, sign_challenge(RING, CHALLENGE), "show-1", 60_001)


def test_difficulty_grows_a_bit_per_doubling_of_load_and_with_suspicion() -> None:
    assert difficulty_bits(10, 22, 100, 500, 1, True) == 10
    assert difficulty_bits(10, 22, 1000, 500, 1, True) == 11
    assert difficulty_bits(10, 22, 4000, 500, 1, True) == 13
    assert difficulty_bits(10, 22, 100, 500, 3, True) == 14
    assert difficulty_bits(10, 22, 100, 500, 1, False) == 12
    assert difficulty_bits(10, 22, 10**9, 500, 50, False) == 22
