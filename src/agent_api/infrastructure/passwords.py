"""Password hashing with pwdlib: Argon2id at (at least) OWASP's parameters, plus bcrypt
verification for hashes imported from the Go original (rehashed to Argon2id on next login).

Hashing is CPU-bound and runs in a bounded thread pool so it never blocks the event loop and
cannot take every thread under a login flood."""

from __future__ import annotations

import os

import anyio
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


class Argon2PasswordHasher:
    def __init__(self, max_threads: int | None = None) -> None:
        """`max_threads` hashes at once: by default one per usable CPU core, at most 4. More
        threads than cores add no throughput but starve the event loop (every other request
        waits behind the hashing threads for the CPU)."""
        if max_threads is None:
            max_threads = max(1, min(4, len(os.sched_getaffinity(0))))
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    memory_cost=ARGON2_MEMORY_KIB,
                    time_cost=ARGON2_TIME_COST,
                    parallelism=ARGON2_PARALLELISM,
                ),
                BcryptHasher(),
            )
        )
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._dummy_hash = self._hash.hash("dummy password for unknown emails")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password, limiter=self._limiter)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one is outdated). Never raises for any input:
        a stored hash no hasher recognises, or a password bcrypt refuses, is a mismatch."""
        return await anyio.to_thread.run_sync(
            self._verify, password, password_hash, limiter=self._limiter
        )

    def _verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        try:
            return self._hash.verify_and_update(password, password_hash)
        except UnknownHashError:
            # A placeholder or corrupt hash (e.g. "!" for a disabled account) never matches;
            # spend the time of a real verification so such accounts cannot be told apart.
            self._hash.verify(password, self._dummy_hash)
            return False, None
        except ValueError:
            # bcrypt refuses passwords over 72 bytes. The Go original could not store one,
            # so such a password cannot match a bcrypt hash.
            return False, None

    async def dummy_verify(self) -> None:
        await self.verify("not the password", self._dummy_hash)
