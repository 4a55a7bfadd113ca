"""The `kefu` command: serve a node, manage apps and agents, migrate (protocol §6)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import orjson
import typer
from pydantic import ValidationError

from kefu import errors
from kefu.cli_export import export
from kefu.cli_kb import kb_cli
from kefu.config import Settings
from kefu.domain.clock import SystemClock
from kefu.domain.records import agent_record
from kefu.services.admin import AdminService
from kefu.storage import Database
from kefu.storage.migrate import migrate

T = TypeVar("T")
cli = typer.Typer(
    name="kefu",
    help="kefu: self-hosted online customer service.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app_cli = typer.Typer(help="Apps (tenants).", no_args_is_help=True)
agent_cli = typer.Typer(help="Agents of an app.", no_args_is_help=True)
cli.add_typer(app_cli, name="app")
cli.add_typer(agent_cli, name="agent")
cli.add_typer(kb_cli, name="kb")
cli.command("export")(export)

DbOption = Annotated[str | None, typer.Option("--db", help="sqlite:///kefu.db or postgresql://… (env KEFU_DB)")]


class CommandError(Exception):
    """A one-line error for the person at the terminal."""


def settings_with(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CommandError(str(first.get("msg", "invalid setting")).removeprefix("Value error, ")) from exc


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` against a migrated database, then close it."""

    async def run() -> T:
        db = Database(settings.db)
        try:
            await migrate(db)
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on (env KEFU_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (env KEFU_PORT, default 8080)")] = None,
    db: DbOption = None,
    redis: Annotated[str | None, typer.Option(help="redis://… to share a deployment between nodes")] = None,
) -> None:
    """Run a node (migrations are applied first)."""
    from kefu.server import run_server

    run_server(settings_with(host=host, port=port, db=db, redis=redis))


@cli.command()
def demo(
    host: Annotated[str | None, typer.Option(help="interface to listen on (env KEFU_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (env KEFU_PORT, default 8080)")] = None,
    db: DbOption = None,
) -> None:
    """`serve` with a seeded demo app; prints the URLs and the demo logins."""
    from kefu.server import run_server
    from kefu.services.demo import ensure_demo_app

    settings = settings_with(host=host, port=port, db=db)

    def first_run() -> None:
        sys.stderr.write("kefu demo: first run, making the demo shop and indexing its knowledge base (~20 s)…\n")
        sys.stderr.flush()

    made = with_database(settings, lambda d: ensure_demo_app(d, SystemClock(), first_run))
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "kefu demo",
        f"  app_id       {made.app_id}",
        f"  app secret   {made.secret}",
        *([f"  api key      {made.api_key}   (shown once)"] if made.api_key else []),
        f"  API          {base}/api/v1   (OpenAPI: {base}/openapi.json)",
        f"  visitor WS   ws://{settings.host}:{settings.port}/ws/visitor?token=…",
        f"  status       {base}/api/v1/status?app_id={made.app_id}",
        f"  demo shop    {base}/demo   (the chat widget: {base}/sdk/v1/kefu.js)",
        f"  console      {base}/console   (agents and admins sign in with the logins below)",
        "  logins (email / password):",
        *(f"    {email} / {password}" for email, password in made.logins),
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    run_server(settings)


@cli.command("migrate")
def migrate_command(db: DbOption = None) -> None:
    """Apply the database migrations."""
    settings = settings_with(db=db)

    async def nothing(_db: Database) -> None:
        return None

    with_database(settings, nothing)
    print_json({"migrated": True, "db": settings.db.split("@")[-1]})


@app_cli.command("create")
def app_create(
    name: str,
    admin_email: Annotated[str, typer.Option("--admin-email", help="the first admin's login")],
    admin_password: Annotated[str, typer.Option("--admin-password", help="at least 8 characters")],
    db: DbOption = None,
) -> None:
    """Create an app; prints {app_id, secret, api_key, admin_id} (the secret and key are shown only now)."""
    settings = settings_with(db=db)
    created = with_database(
        settings, lambda d: AdminService(d, SystemClock()).create_app(name, admin_email, admin_password)
    )
    print_json(asdict(created))


@agent_cli.command("add")
def agent_add(
    app: Annotated[str, typer.Option("--app", help="app_id")],
    email: Annotated[str, typer.Option(help="login email")],
    password: Annotated[str, typer.Option(help="at least 8 characters")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="skill group; repeat for several")] = None,
    level: Annotated[int, typer.Option(help="seniority, higher = more senior")] = 1,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", help="chats at once")] = 5,
    role: Annotated[str, typer.Option(help="agent or admin")] = "agent",
    db: DbOption = None,
) -> None:
    """Add an agent to an app; prints the agent."""
    settings = settings_with(db=db)
    agent = with_database(
        settings,
        lambda d: AdminService(d, SystemClock()).add_agent(
            app, email, password, name, tuple(group or ()), level, max_concurrent, role
        ),
    )
    print_json(agent_record(agent))


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line on stderr and a non-zero exit, never a traceback."""
    try:
        cli(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        sys.stderr.write("kefu: aborted\n")
        raise SystemExit(130) from None
    except (errors.KefuError, CommandError) as exc:
        sys.stderr.write(f"kefu: error: {exc}\n")
        raise SystemExit(1) from None
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"kefu: error: {type(exc).__name__}: {exc}\n")
        raise SystemExit(1) from None
    except Exception as exc:  # usage errors (click's, re-exported by Typer), an unreachable database, …
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `kefu`: the help, not an error
            sys.stdout.write(str(getattr(exc, "format_message", lambda: "")()) + "\n")
            raise SystemExit(0) from None
        if callable(format_message := getattr(exc, "format_message", None)):
            sys.stderr.write(f"kefu: error: {format_message()}\n")
            raise SystemExit(2) from None
        sys.stderr.write(f"kefu: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n")
        raise SystemExit(1) from None
