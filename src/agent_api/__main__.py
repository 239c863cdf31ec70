"""The `agent-api` command line (also `python -m agent_api`).

agent-api serve [--host H] [--port P]   serve the API (flags override SERVER_HOST/PORT)
agent-api migrate [--revision R]         apply database migrations (default: head)
agent-api create-user --email E --name N [--role admin]   password read from stdin or prompt
agent-api create-api-key --email E --name N [--allowed-tools a,b] [--allowed-models m]
    [--expires-in 30d] [--rate-limit-per-minute N] [--rate-limit-per-day N] [--can-approve]
                                         prints the new key once (its last line of stdout)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from agent_api.config import Settings
from agent_api.domain.errors import AppError, ValidationFailed
from agent_api.domain.users import NAME_MAX_LENGTH, Role, check_password_policy
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
    import math

    import uvicorn

    from agent_api.api.app import create_app
    from agent_api.api.timeouts import header_timeout_protocol

    app = create_app(settings)

    class DrainingServer(uvicorn.Server):
        """On SIGTERM/SIGINT: stop accepting, tell open streams to end with a final event,
        let in-flight requests finish within SHUTDOWN_TIMEOUT, then stop."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.state.draining.set()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=args.host or settings.server_host,
        port=args.port or settings.server_port,
        log_config=None,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout.total_seconds()),
        # Slow clients: see agent_api.api.timeouts (the body limit is a middleware of the app).
        http=header_timeout_protocol(settings.request_header_timeout.total_seconds()),
        timeout_keep_alive=math.ceil(settings.keepalive_timeout.total_seconds()),
        # No `limit_concurrency`: beyond it uvicorn answers 503 to every request, /health and
        # /ready included, so slow clients would fail the probes. The timeouts above bound
        # how long each one holds a socket; connection caps belong to the proxy.
    )
    DrainingServer(config).run()


async def _migrate(settings: Settings, revision: str) -> None:
    import sqlalchemy.exc

    from agent_api.domain.errors import ServiceUnavailable
    from agent_api.infrastructure.db import migrations
    from agent_api.infrastructure.db.database import create_engine

    engine = create_engine(settings.database_url)
    try:
        await migrations.upgrade(engine, revision)
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, OSError) as exc:
        raise ServiceUnavailable(f"database unreachable ({type(exc).__name__})") from exc
    finally:
        await engine.dispose()


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    # Piped input may end with "\r\n" (files written on Windows): neither is the password.
    return sys.stdin.readline().rstrip("\r\n")


def _check_identity(email: str, name: str) -> None:
    """The checks the register endpoint's schema makes. Raises ValidationFailed."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"invalid --email: {exc}") from None
    if not 1 <= len(name.strip()) <= NAME_MAX_LENGTH:
        raise ValidationFailed(f"--name must be 1 to {NAME_MAX_LENGTH} characters")


async def _create_user(settings: Settings, email: str, name: str, role: Role) -> None:
    _check_identity(email, name)
    password = _read_password("Password: ")
    check_password_policy(password)
    from agent_api.bootstrap import build  # the whole app: imported once the input is checked

    async with build(settings) as container:
        user = await container.auth.register(email, password, name, role)
    print(f"created user {user.id} <{user.email}> role={user.role.value}")


def _names(value: str | None) -> list[str] | None:
    """Absent = everything; "" = nothing; "*" = everything; else a comma-separated list."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


async def _create_api_key(settings: Settings, args: argparse.Namespace) -> None:
    from datetime import UTC, datetime

    from agent_api.application.api_keys import KeySpec
    from agent_api.bootstrap import build
    from agent_api.config_types import parse_duration

    try:
        expires_at = (
            datetime.now(UTC) + parse_duration(args.expires_in) if args.expires_in else None
        )
    except ValueError as exc:
        sys.exit(f"error: --expires-in: {exc}")
    spec = KeySpec(
        name=args.name,
        allowed_tools=_names(args.allowed_tools),
        allowed_models=_names(args.allowed_models),
        expires_at=expires_at,
        rate_limit_per_minute=args.rate_limit_per_minute,
        rate_limit_per_day=args.rate_limit_per_day,
        can_approve=args.can_approve,
    )
    async with build(settings) as container:
        created = await container.api_keys.create_for_email(args.email, spec)
    key = created.api_key
    print(
        f"created API key {key.id} ({key.prefix}...) for {args.email}; "
        "store it now, it cannot be shown again:",
        file=sys.stderr,
    )
    print(created.secret)


def _parser() -> argparse.ArgumentParser:
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
    create_key = commands.add_parser("create-api-key", help="create an API key for a user")
    create_key.add_argument("--email", required=True, help="the owner's email")
    create_key.add_argument("--name", required=True, help="a label for the key")
    create_key.add_argument("--allowed-tools", help='comma list; "" = none, "*" = all (default)')
    create_key.add_argument("--allowed-models", help='comma list; "" = none, "*" = all (default)')
    create_key.add_argument("--expires-in", help="e.g. 30d, 12h (default: never)")
    create_key.add_argument("--rate-limit-per-minute", type=int)
    create_key.add_argument("--rate-limit-per-day", type=int)
    create_key.add_argument(
        "--can-approve",
        action="store_true",
        help="let the key decide approvals (default: only sessions may)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
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
        elif args.command == "create-api-key":
            asyncio.run(_create_api_key(settings, args))
    except AppError as exc:
        sys.exit(f"error: {exc.message}")


if __name__ == "__main__":
    main()
