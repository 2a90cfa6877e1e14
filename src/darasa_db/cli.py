"""The `darasa-db` command: migrate, inspect and try out a database.

The database is `--url`, else `DatabaseSettings.from_env()` when `DATABASE_URL` or `DB_*` are
set, else the embedded server (with the `embedded` extra). Exit status: 0 success, 1 when
`check` finds the database behind head or `health` gets no answer, 2 on errors, which are
printed as one line on stderr, never with the password.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from darasa_db import __version__, migrate
from darasa_db.database import Database
from darasa_db.errors import ConfigurationError, DarasaDBError
from darasa_db.models.base import DEFAULT_SCHEMA
from darasa_db.settings import DatabaseSettings

__all__ = ["build_parser", "main", "resolve_settings"]

PROG = "darasa-db"
_ENV_NAMES = ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME")
Command = Callable[[argparse.Namespace], int]


def _describe(revision: str | None) -> str:
    head = migrate.head()
    if revision is None:
        return "base (not migrated)"
    return f"{revision} (head)" if revision == head else f"{revision} (head is {head})"


def _where(settings: DatabaseSettings) -> str:
    return f"schema {settings.schema_name!r} at {settings.safe_url}"


def _migrate(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    applied = migrate.upgrade(settings, args.revision)
    now = _describe(migrate.current(settings))
    if applied:
        print(f"migrated {_where(settings)}: applied {', '.join(applied)}; now at {now}")
    else:
        print(f"{_where(settings)} is already at {now}; nothing to do")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    reverted = migrate.downgrade(settings, args.revision)
    now = _describe(migrate.current(settings))
    if reverted:
        print(f"downgraded {_where(settings)}: reverted {', '.join(reverted)}; now at {now}")
    else:
        print(f"{_where(settings)} is already at {now}; nothing to do")
    return 0


def _current(args: argparse.Namespace) -> int:
    print(_describe(migrate.current(resolve_settings(args))))
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    revision = migrate.current(settings)
    if revision == migrate.head():
        print(f"{_where(settings)} is at head {revision}")
        return 0
    print(f"{_where(settings)} is at {_describe(revision)}: run `darasa-db migrate`")
    return 1


def _history(args: argparse.Namespace) -> int:
    head = migrate.head()
    for revision in migrate.history():
        mark = " (head)" if revision.revision == head else ""
        print(f"{revision.revision}{mark}  {revision.doc}")
    return 0


async def _answers(settings: DatabaseSettings) -> bool:
    async with Database(settings, cache=None) as db:
        return await db.health_check()


def _health(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    if not asyncio.run(_answers(settings)):
        print(
            f"{PROG}: error: PostgreSQL at {settings.safe_url} does not answer SELECT 1 "
            f"within {settings.connect_timeout:g} s",
            file=sys.stderr,
        )
        return 1
    revision = migrate.current(settings)
    print(
        f"healthy: PostgreSQL at {settings.safe_url} answers; {_where(settings)} is at "
        f"{_describe(revision)}"
    )
    return 0


def _rls(args: argparse.Namespace) -> int:
    from darasa_db import rls

    settings = resolve_settings(args)
    schema = settings.schema_name
    if args.action == "enable":
        rls.enable(settings.url, schema=schema, force=args.force)
    elif args.action == "disable":
        rls.disable(settings.url, schema=schema)
    state = rls.status(settings.url, schema=schema)
    on = sorted(table for table, enabled in state.items() if enabled)
    summary = f"on for {', '.join(on)}" if on else "off"
    print(f"row-level security in {_where(settings)}: {summary}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from darasa_db.demo import run_demo

    settings = resolve_settings(args)
    asyncio.run(run_demo(settings.url, schema=settings.schema_name))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `darasa-db` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Migrate, inspect and try out a darasa-db database.",
        epilog="Without --url: DATABASE_URL or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME, "
        "else the embedded server (pip install 'darasa-db[embedded]').",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--url", help="PostgreSQL URL (default: from the environment)")
    parser.add_argument(
        "--schema", help=f"schema holding darasa-db's tables (default: {DEFAULT_SCHEMA})"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Command, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    upgrade = add("migrate", _migrate, "upgrade to head, or to --revision")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    downgrade = add("downgrade", _downgrade, "downgrade to REVISION (base removes all of ours)")
    downgrade.add_argument("revision", metavar="REVISION", help="a revision, base, or -N steps")
    add("current", _current, "print the revision the database is at")
    add("check", _check, "exit 0 when the database is at head, 1 when it is not")
    add("history", _history, "list the bundled revisions, oldest first")
    add("health", _health, "check that the database answers")
    policies = add("rls", _rls, "enable, disable or show row-level security on our tables")
    policies.add_argument("action", choices=("enable", "disable", "status"))
    policies.add_argument("--force", action="store_true", help="apply it to the table owner too")
    add("demo", _demo, "run the application's flows end to end, then delete what they made")
    return parser


def resolve_settings(args: argparse.Namespace) -> DatabaseSettings:
    """The settings from `--url`, else the environment, else the embedded server."""
    if args.url:
        url = args.url
    elif any(os.environ.get(name, "").strip() for name in _ENV_NAMES):
        url = DatabaseSettings.from_env().url
    else:
        url = _embedded_url()
    try:
        return DatabaseSettings(url=url, schema_name=args.schema or DEFAULT_SCHEMA)
    except ValidationError as exc:
        raise ConfigurationError(_reasons(exc)) from None


def _embedded_url() -> str:
    from darasa_db.embedded import data_directory, embedded_url

    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            url = embedded_url()
    except ConfigurationError:
        raise ConfigurationError(
            "no database configured: pass --url, set DATABASE_URL (or DB_HOST, DB_USER, DB_NAME), "
            "or pip install 'darasa-db[embedded]' to use the embedded server"
        ) from None
    print(f"{PROG}: using the embedded PostgreSQL in {data_directory()}", file=sys.stderr)
    return url


def _reasons(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return _reasons(exc)
    if isinstance(exc, SQLAlchemyError | psycopg.Error):
        cause = getattr(exc, "orig", None) or exc
        return "database error: " + (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def _logging(verbose: bool) -> Iterator[None]:
    """Show darasa-db's INFO logs with --verbose; otherwise keep stderr to the one error line."""
    package = logging.getLogger("darasa_db")
    handler: logging.Handler = logging.NullHandler()
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO if verbose else level)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default `sys.argv[1:]`) and return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    with _logging(args.verbose):
        try:
            handler: Command = args.handler
            return handler(args)
        except (DarasaDBError, ValidationError, SQLAlchemyError, psycopg.Error) as exc:
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
