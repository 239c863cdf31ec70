"""Argon2PasswordHasher: Argon2id at OWASP's parameters, bcrypt hashes from the Go database
verified and upgraded, and no input a client can send makes verification raise."""

from __future__ import annotations

import bcrypt
import pytest

from agent_api.infrastructure.passwords import Argon2PasswordHasher

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher()


def go_bcrypt_hash(password: str) -> str:
    """A hash as the Go original stored it: `$2a$`, cost 10 (bcrypt.DefaultCost)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(10, prefix=b"2a")).decode()


async def test_hashes_are_argon2id_at_owasp_parameters(hasher: Argon2PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in hashed
    assert await hasher.hash(PASSWORD) != hashed  # salted


async def test_verify_a_current_hash(hasher: Argon2PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)
    assert await hasher.verify(PASSWORD, hashed) == (True, None)
    assert await hasher.verify("wrong password", hashed) == (False, None)


async def test_a_go_bcrypt_hash_verifies_and_is_upgraded(hasher: Argon2PasswordHasher) -> None:
    legacy = go_bcrypt_hash(PASSWORD)
    assert legacy.startswith("$2a$10$")

    matches, upgraded = await hasher.verify(PASSWORD, legacy)

    assert matches
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$")
    assert await hasher.verify(PASSWORD, upgraded) == (True, None)


async def test_a_go_bcrypt_hash_with_a_wrong_password(hasher: Argon2PasswordHasher) -> None:
    assert await hasher.verify("wrong password", go_bcrypt_hash(PASSWORD)) == (False, None)


async def test_a_long_password_against_a_bcrypt_hash_is_a_mismatch(
    hasher: Argon2PasswordHasher,
) -> None:
    # bcrypt refuses more than 72 bytes; the Go original never stored such a password, so it
    # cannot match -- and it must not turn a login into a 500.
    legacy = go_bcrypt_hash(PASSWORD)
    assert await hasher.verify("x" * 100, legacy) == (False, None)
    assert await hasher.verify(PASSWORD + "x" * 100, legacy) == (False, None)


@pytest.mark.parametrize("stored", ["", "!", "not-a-hash", "$argon2id$broken", "$2a$10$short"])
async def test_an_unrecognised_stored_hash_never_matches(
    hasher: Argon2PasswordHasher, stored: str
) -> None:
    assert await hasher.verify(PASSWORD, stored) == (False, None)


async def test_long_passwords_work_with_argon2(hasher: Argon2PasswordHasher) -> None:
    long_password = "🔑" * 1024  # the policy's maximum, 4 KiB of UTF-8
    hashed = await hasher.hash(long_password)
    assert await hasher.verify(long_password, hashed) == (True, None)
    assert await hasher.verify(long_password[:-1], hashed) == (False, None)


async def test_dummy_verify(hasher: Argon2PasswordHasher) -> None:
    await hasher.dummy_verify()
