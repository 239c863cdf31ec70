"""The `agent-api` command line (also `python -m agent_api`).

agent-api serve [--host H] [--port P]   serve the API (flags override SERVER_HOST/PORT)
agent-api migrate [--revision R]         apply database migrations (default: head)
agent-api create-user --email E --name N [--role admin]   password read from stdin or prompt
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from agent_api.config import Settings
from agent_api.domain.errors import AppError
from agent_api.domain.users import Role
from agent_api.infrastructure.logging import configure_logging


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, err['loc'])).upper() or 'config'}: {err['msg']}"
            for err in exc.errors()
        ]
        sys.exit("invalid configuration:\n" + "\n".join(lines))


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from agent_api.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.server_host,
        port=args.port or settings.server_port,
        log_config=None,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout.total_seconds()),
    )


async def _migrate(settings: Settings, revision: str) -> None:
    from agent_api.infrastructure.db import migrations
    from agent_api.infrastructure.db.database import create_engine

    engine = create_engine(settings.database_url)
    try:
        await migrations.upgrade(engine, revision)
    finally:
        await engine.dispose()


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


async def _create_user(settings: Settings, email: str, name: str, role: Role) -> None:
    from agent_api.bootstrap import build

    password = _read_password("Password: ")
    async with build(settings) as container:
        user = await container.auth.register(email, password, name, role)
    print(f"created user {user.id} <{user.email}> role={user.role.value}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agent-api", description="Self-hosted agent API server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API")
    serve.add_argument("--host", help="bind address (default SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port (default SERVER_PORT)")
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head")
    create_user = commands.add_parser("create-user", help="create a user (password on stdin)")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--name", required=True)
    create_user.add_argument("--role", choices=[r.value for r in Role], default=Role.USER.value)
    args = parser.parse_args(argv)

    settings = _load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            _serve(args, settings)
        elif args.command == "migrate":
            asyncio.run(_migrate(settings, args.revision))
            print(f"database migrated to {args.revision}")
        elif args.command == "create-user":
            asyncio.run(_create_user(settings, args.email, args.name, Role(args.role)))
    except AppError as exc:
        sys.exit(f"error: {exc.message}")


if __name__ == "__main__":
    main()
