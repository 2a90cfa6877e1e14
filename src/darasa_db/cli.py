"""The `darasa-db` command: migrate, inspect and try out a database.

The database is `--url`, else `DatabaseSettings.from_env()` when `DATABASE_URL` or any `DB_*`
variable is set, else (nothing configured at all) the embedded server, which is said in one
line. An empty `--url` or `DATABASE_URL` is an error, never a fallback. Global options may come
before or after the command. Exit status: 0 success; 1 when `check` finds the database behind
head, `health` finds it unhealthy, or `embedded status` finds the server stopped; 2 on errors,
printed as one line on stderr, never with the password; 130 on Ctrl-C (one line); 141 when
the reader of the output goes away (`darasa-db demo | head -1`), silently.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from darasa_db import __version__
from darasa_db._quiet import runtime_dir_warning_ignored
from darasa_db.errors import ConfigurationError, DarasaDBError

if TYPE_CHECKING:
    import psycopg

    from darasa_db.settings import DatabaseSettings

__all__ = ["build_parser", "main", "resolve_settings"]

PROG = "darasa-db"
_ENV_NAMES = ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME")
_CHATTY_LOGGERS = ("psycopg", "psycopg.pool", "sqlalchemy", "asyncio", "alembic")
Command = Callable[[argparse.Namespace], int]
# The heavy imports (SQLAlchemy, psycopg, Alembic) happen inside `main`, so that Ctrl-C while
# they load is the one-line "interrupted", not a traceback.


def _describe(revision: str | None) -> str:
    from darasa_db import migrate

    head = migrate.head()
    if revision is None:
        return "base (not migrated)"
    return f"{revision} (head)" if revision == head else f"{revision} (head is {head})"


def _where(settings: DatabaseSettings) -> str:
    return f"schema {settings.schema_name!r} at {settings.safe_url}"


def _migrate(args: argparse.Namespace) -> int:
    from darasa_db import migrate

    settings = resolve_settings(args)
    applied = migrate.upgrade(settings, args.revision)
    now = _describe(migrate.current(settings))
    if applied:
        print(f"migrated {_where(settings)}: applied {', '.join(applied)}; now at {now}")
    else:
        print(f"{_where(settings)} is already at {now}; nothing to do")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from darasa_db import migrate

    settings = resolve_settings(args)
    reverted = migrate.downgrade(settings, args.revision)
    now = _describe(migrate.current(settings))
    if reverted:
        print(f"downgraded {_where(settings)}: reverted {', '.join(reverted)}; now at {now}")
    else:
        print(f"{_where(settings)} is already at {now}; nothing to do")
    return 0


def _current(args: argparse.Namespace) -> int:
    from darasa_db import migrate

    print(_describe(migrate.current(resolve_settings(args))))
    return 0


def _check(args: argparse.Namespace) -> int:
    from darasa_db import migrate

    settings = resolve_settings(args)
    revision = migrate.current(settings)
    if revision == migrate.head():
        print(f"{_where(settings)} is at head {revision}")
        return 0
    print(f"{_where(settings)} is at {_describe(revision)}: run `darasa-db migrate`")
    return 1


def _history(args: argparse.Namespace) -> int:
    from darasa_db import migrate

    head = migrate.head()
    for revision in migrate.history():
        mark = " (head)" if revision.revision == head else ""
        print(f"{revision.revision}{mark}  {revision.doc}")
    return 0


def _health(args: argparse.Namespace) -> int:
    from darasa_db import migrate

    settings = resolve_settings(args)
    problem = _unhealthy(settings)
    if problem is not None:
        summary, detail = problem
        print(f"{PROG}: error: {summary}", file=sys.stderr)
        if args.verbose:
            for line in detail:
                print(f"{PROG}:   {line}", file=sys.stderr)
        return 1
    revision = migrate.current(settings)
    print(
        f"healthy: PostgreSQL at {settings.safe_url} answers; {_where(settings)} is at "
        f"{_describe(revision)}"
    )
    return 0


def _unhealthy(settings: DatabaseSettings) -> tuple[str, list[str]] | None:
    """None when the server answers `SELECT 1`; else one line naming the cause, and details.

    The timeout is the URL's `connect_timeout` when it has one, else the settings'.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    options = conninfo_to_dict(settings.conninfo)
    timeout = int(options.get("connect_timeout") or max(1, round(settings.connect_timeout)))
    try:
        with psycopg.connect(
            settings.conninfo, connect_timeout=timeout, application_name="darasa-db health"
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return _health_cause(settings, exc, timeout)
    return None


def _health_cause(
    settings: DatabaseSettings, exc: psycopg.Error, timeout: int
) -> tuple[str, list[str]]:
    """Classify a failed health probe: authentication, unknown database, refused, timeout."""
    from urllib.parse import unquote, urlsplit

    message = str(exc).strip() or type(exc).__name__
    password = unquote(urlsplit(settings.url).password or "")
    if password:  # libpq does not echo it, but a message must never carry it
        message = message.replace(password, "***")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    server = next((line for line in lines if "FATAL:" in line), lines[0])
    server = server.split("FATAL:", 1)[-1].strip()
    lowered = message.lower()
    where = f"PostgreSQL at {settings.safe_url}"
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in ("28P01", "28000") or "authentication" in lowered or "pg_hba" in lowered:
        summary = f"{where} refuses the connection: authentication failed ({server})"
    elif sqlstate == "3D000" or ("database" in lowered and "does not exist" in lowered):
        summary = f"{where} answers but has no such database: unknown database ({server})"
    elif "connection refused" in lowered:
        summary = f"{where} does not answer: connection refused (is the server running?)"
    elif "timeout" in lowered or "timed out" in lowered:
        summary = f"{where} does not answer: timeout, no answer within {timeout} s"
    elif "translate host name" in lowered or "name or service not known" in lowered:
        summary = f"{where} does not answer: unknown host ({server})"
    else:
        summary = f"{where} does not answer: {server}"
    detail = [*lines, f"{type(exc).__module__}.{type(exc).__name__}, sqlstate {sqlstate}"]
    return summary, detail


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


def _search_index(args: argparse.Namespace) -> int:
    from darasa_db import search_index

    settings = resolve_settings(args)
    schema = settings.schema_name
    if args.action == "drop":
        dropped = search_index.drop(settings.url, schema=schema)
        print(f"{search_index.INDEX} in {_where(settings)}: {'dropped' if dropped else 'missing'}")
        return 0
    if args.action == "build":
        built = search_index.build(
            settings.url,
            schema=schema,
            maintenance_work_mem=args.maintenance_work_mem,
            concurrently=args.concurrently,
        )
        print(f"{search_index.INDEX} in {_where(settings)}: {'built' if built else 'valid'}")
        return 0
    state = search_index.status(settings.url, schema=schema)
    print(f"{search_index.INDEX} in {_where(settings)}: {state}")
    return 0 if state == "valid" else 1


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from darasa_db.demo import run_demo

    settings = resolve_settings(args)
    asyncio.run(run_demo(settings.url, schema=settings.schema_name, out=_print_now))
    return 0


def _print_now(line: str) -> None:
    """Print a line at once, so a reader sees each step as it ends (and a closed pipe shows)."""
    print(line, flush=True)


def _embedded(args: argparse.Namespace) -> int:
    from darasa_db import embedded

    directory = embedded.data_directory()
    if args.action == "url":
        with runtime_dir_warning_ignored():
            print(embedded.usable_url())
        return 0
    if args.action == "stop":
        if embedded.stop_embedded():
            print(f"stopped the embedded PostgreSQL in {directory}; its data is kept")
        else:
            print(f"the embedded PostgreSQL in {directory} is not running; nothing to do")
        return 0
    status = embedded.embedded_status()
    if status.running:
        print(
            f"running: the embedded PostgreSQL in {directory} (pid {status.pid}) at "
            f"{status.url} (user postgres, empty password)"
        )
        return 0
    kept = "its data is kept" if status.initialised else "it has no data yet"
    print(f"stopped: the embedded PostgreSQL in {directory} is not running; {kept}")
    return 1


def _add_global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """--url, --schema and -v; after the command they default to 'not given' (SUPPRESS)."""
    from darasa_db.models.base import DEFAULT_SCHEMA

    unset = argparse.SUPPRESS if after_command else None
    parser.add_argument(
        "--url", default=unset, help="PostgreSQL URL (default: DATABASE_URL, then DB_*)"
    )
    parser.add_argument(
        "--schema",
        default=unset,
        help=f"schema holding darasa-db's tables (default: {DEFAULT_SCHEMA})",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if after_command else False,
        help="log each step; show the details of a failure",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `darasa-db` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Migrate, inspect and try out a darasa-db database.",
        epilog="Without --url: DATABASE_URL or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME; "
        "only when none of them is set, the embedded server (pip install "
        "'darasa-db[embedded]'). Options may come before or after the command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, after_command=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, after_command=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Command, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    upgrade = add("migrate", _migrate, "upgrade to head, or to --revision")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    downgrade = add(
        "downgrade",
        _downgrade,
        "downgrade to REVISION (base removes all of ours); nothing to do when already there",
    )
    downgrade.add_argument("revision", metavar="REVISION", help="a revision, base, or -N steps")
    add("current", _current, "print the revision the database is at")
    add("check", _check, "exit 0 when the database is at head, 1 when it is not")
    add("history", _history, "list the bundled revisions, oldest first")
    add("health", _health, "check that the database answers; name the cause when it does not")
    policies = add("rls", _rls, "enable, disable or show row-level security on our tables")
    policies.add_argument("action", choices=("enable", "disable", "status"))
    policies.add_argument("--force", action="store_true", help="apply it to the table owner too")
    index = add(
        "search-index",
        _search_index,
        "show (exit 1 unless valid), drop or build the HNSW index of the embeddings "
        "(drop it before an initial bulk load, build it after)",
    )
    index.add_argument("action", choices=("status", "drop", "build"))
    index.add_argument(
        "--maintenance-work-mem",
        metavar="SIZE",
        help="for the build's session, e.g. 2GB (at least the graph's size)",
    )
    index.add_argument(
        "--concurrently", action="store_true", help="let writes go on during the build"
    )
    add("demo", _demo, "run the application's flows end to end, then delete what they made")
    server = add("embedded", _embedded, "show, stop, or print the URL of the embedded server")
    server.add_argument(
        "action",
        choices=("status", "stop", "url"),
        help="status: running or not (exit 1 when not); stop: stop it; "
        "url: start it if needed and print its URL, usable as is",
    )
    return parser


def resolve_settings(args: argparse.Namespace) -> DatabaseSettings:
    """The settings from `--url`, else the environment, else (nothing set) the embedded server.

    An empty `--url` or `DATABASE_URL` raises `ConfigurationError`: a variable that did not
    expand in a deploy step must not silently migrate a throwaway local server.
    """
    from pydantic import ValidationError

    from darasa_db.models.base import DEFAULT_SCHEMA
    from darasa_db.settings import DatabaseSettings

    url: str | None = getattr(args, "url", None)
    if url is not None:
        if not url.strip():
            raise ConfigurationError(
                "--url is empty: give a PostgreSQL URL, or leave --url out to use DATABASE_URL"
            )
    elif "DATABASE_URL" in os.environ and not os.environ["DATABASE_URL"].strip():
        raise ConfigurationError(
            "DATABASE_URL is set but empty (did a variable not expand?): set it to a "
            "PostgreSQL URL, or unset it to use DB_* or the embedded server"
        )
    elif any(name in os.environ for name in _ENV_NAMES):
        url = DatabaseSettings.from_env().url
    else:
        url = _embedded_url()
    try:
        return DatabaseSettings(
            url=url, schema_name=getattr(args, "schema", None) or DEFAULT_SCHEMA
        )
    except ValidationError as exc:
        raise ConfigurationError(_reasons(exc)) from None


def _embedded_url() -> str:
    from darasa_db.embedded import data_directory, embedded_url

    try:
        with runtime_dir_warning_ignored():
            url = embedded_url()
    except ConfigurationError as exc:
        if "not installed" not in str(exc):
            raise
        raise ConfigurationError(
            "no database configured: pass --url, set DATABASE_URL (or DB_HOST, DB_USER, DB_NAME), "
            "or pip install 'darasa-db[embedded]' to use the embedded server"
        ) from None
    print(
        f"{PROG}: no --url, DATABASE_URL or DB_* set: using the embedded PostgreSQL in "
        f"{data_directory()}",
        file=sys.stderr,
    )
    return url


def _reasons(exc: BaseException) -> str:
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


def _one_line(exc: BaseException) -> str:
    import psycopg
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, ValidationError):
        return _reasons(exc)
    if isinstance(exc, SQLAlchemyError | psycopg.Error):
        cause = getattr(exc, "orig", None) or exc
        return "database error: " + (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return " ".join(str(exc).split()) or type(exc).__name__


def _expected_errors() -> tuple[type[BaseException], ...]:
    """The errors reported as one line (imported here: they come with the heavy modules)."""
    import psycopg
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    return (DarasaDBError, ValidationError, SQLAlchemyError, psycopg.Error)


@contextmanager
def _logging(verbose: bool) -> Iterator[None]:
    """Show darasa-db's INFO logs with --verbose; otherwise keep stderr to the one error line.

    Without --verbose the drivers' own log records (psycopg's pool warnings on Ctrl-C, say)
    are dropped too, instead of reaching stderr through logging's last-resort handler.
    """
    package = logging.getLogger("darasa_db")
    handler: logging.Handler = logging.NullHandler()
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    quiet = [] if verbose else [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    null = logging.NullHandler()
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO if verbose else level)
    for logger in quiet:
        logger.addHandler(null)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        for logger in quiet:
            logger.removeHandler(null)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    expected = _expected_errors()
    with _logging(args.verbose):
        try:
            handler: Command = args.handler
            return handler(args)
        except expected as exc:
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
            return 2


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the exit flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default `sys.argv[1:]`) and return the exit status."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        _quiet_stdout()
        return 141


if __name__ == "__main__":
    sys.exit(main())
