"""Password hashing with pwdlib: Argon2id at (at least) OWASP's parameters, plus bcrypt
verification for hashes imported from the Go original (rehashed to Argon2id on next login).

Hashing is CPU-bound and runs in a bounded thread pool so it never blocks the event loop and
cannot take every thread under a login flood."""

from __future__ import annotations

import anyio
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


class Argon2PasswordHasher:
    def __init__(self, max_threads: int = 4) -> None:
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
        return await anyio.to_thread.run_sync(
            self._hash.verify_and_update, password, password_hash, limiter=self._limiter
        )

    async def dummy_verify(self) -> None:
        await self.verify("not the password", self._dummy_hash)
