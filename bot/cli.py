"""The `crmbot` command: run the system, or one role of it, and administer it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from conversations.access import Role as StaffRole
from conversations.db import Database, create_engine
from conversations.staff import PasswordPolicyError, create_staff, generate_password, staff_count

from . import log_context
from .account_config import apply_configured_accounts
from .config import ConfigError, Settings, load_settings
from .migrate import upgrade
from .runtime import (
    ALL_ROLES,
    Role,
    Services,
    build_services,
    settle_heap,
    start_background,
    web_app,
)

log = logging.getLogger("crmbot")


def configure_logging(settings: Settings) -> None:
    log_context.configure_logging(settings.log_format, settings.log_level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def ensure_first_admin(db: Database) -> tuple[str, str] | None:
    """Create the first admin with a generated password (printed once) on a new install."""
    async with db.transaction() as s:
        if await staff_count(s):
            return None
        password = generate_password()
        await create_staff(
            s, username="admin", password=password, role=StaffRole.ADMIN, display_name="管理员"
        )
        return "admin", password


def _banner(
    settings: Settings,
    login: tuple[str, str] | None,
    sandbox: bool,
    configured: list[tuple[str, str, str]] | None = None,
) -> str:
    lines = ["", "crmbot is running.", f"  Console:  {settings.public_url}/"]
    if login:
        lines.append(
            f"  Login:    {login[0]} / {login[1]}   (shown once; `crmbot users create` adds more)"
        )
    else:
        lines.append("  Login:    your existing staff account")
    if sandbox:
        lines.append(
            f"  Sandbox:  no provider credentials needed; try {settings.public_url}/sandbox"
        )
    lines.append(
        f"  Store:    {'SQLite' if settings.database_url.startswith('sqlite') else 'PostgreSQL'}"
        f" · queue: {'Redis Streams' if settings.redis_url else 'in-process'}"
    )
    return "\n".join(lines) + "\n"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): it takes about a third off the
    per-request cost of aiohttp, which is most of a callback's acknowledgement."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(settings: Settings, roles: frozenset[Role]) -> None:
    """Run the web role (and, for `run`, the worker role) until SIGINT/SIGTERM."""

    async def make_app() -> web.Application:
        services = await build_services(settings, roles)
        try:
            configured = await apply_configured_accounts(services)
        except ConfigError:
            await services.close()
            raise
        login = await ensure_first_admin(services.db) if Role.WEB in roles else None
        sandbox = None
        if settings.sandbox:
            from .sandbox import WeComSandbox

            sandbox = WeComSandbox(services)
            await sandbox.start()
            services.extras["simulator"] = sandbox
        app = web_app(services)

        async def on_startup(_app: web.Application) -> None:
            await start_background(services)
            settle_heap()
            print(_banner(settings, login, sandbox is not None, configured), flush=True)  # noqa: T201

        async def on_cleanup(_app: web.Application) -> None:
            if sandbox is not None:
                await sandbox.stop()
            await services.close()  # finishes in-flight work before closing the store

        app.on_startup.append(on_startup)
        app.on_cleanup.append(on_cleanup)
        return app

    web.run_app(
        make_app(),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        loop=new_event_loop(),
    )


async def run_role(settings: Settings, role: Role) -> None:
    """A headless role (worker or scheduler) until SIGINT/SIGTERM."""
    services: Services = await build_services(settings, frozenset({role}))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, services.supervisor.stop.set)
    await start_background(services)
    settle_heap()
    log.info("%s started", role.value)
    try:
        await services.supervisor.stop.wait()
    finally:
        await services.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crmbot", description="CRM bot for WeCom, SMS and email")
    parser.add_argument(
        "--config", help="TOML configuration file (default: ./crmbot.toml if present)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="everything in one process: migrate, console, callbacks, workers")
    sub.add_parser("web", help="callbacks and console only (stateless; scale out behind a proxy)")
    sub.add_parser("worker", help="pipeline handlers, outbox dispatch and pollers")
    sub.add_parser("scheduler", help="fires broadcast schedules and drives their sends")
    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser("check-config", help="validate the configuration and exit")
    users = sub.add_parser("users", help="staff accounts").add_subparsers(
        dest="users_command", required=True
    )
    create = users.add_parser("create", help="create a console user")
    create.add_argument("--username", required=True)
    create.add_argument("--role", choices=[r.value for r in StaffRole], default="sales")
    create.add_argument("--password", help="default: generate one and print it")
    create.add_argument("--display-name")
    args = parser.parse_args(argv)

    from pathlib import Path

    try:
        settings = load_settings(config_file=Path(args.config) if args.config else None)
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)

    if args.command == "check-config":
        print("configuration OK")  # noqa: T201
        return 0
    if args.command in ("run", "migrate"):
        upgrade(settings.database_url)
        if args.command == "migrate":
            print("database is up to date")  # noqa: T201
            return 0
    try:
        if args.command == "run":
            serve(settings, ALL_ROLES)
            return 0
        if args.command == "web":
            serve(settings, frozenset({Role.WEB}))
            return 0
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # noqa: T201
        return 2
    if args.command in ("worker", "scheduler"):
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(run_role(settings, Role(args.command)))
        return 0
    if args.command == "users":
        return asyncio.run(_create_user(settings, args))
    return 2


async def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(create_engine(settings.database_url))
    password = args.password or generate_password()
    try:
        async with db.transaction() as s:
            await create_staff(
                s,
                username=args.username,
                password=password,
                role=StaffRole(args.role),
                display_name=args.display_name,
            )
    except (PasswordPolicyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        await db.dispose()
    print(
        f"created {args.role} {args.username}"
        + ("" if args.password else f" with password {password}")
    )  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
