"""The results table on stdout and as JSON."""

from __future__ import annotations

import json
import platform
import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["environment", "markdown", "table", "write_json"]


def table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table, one block per operation."""
    header = ("contender", "median µs", "p95 µs", "ops/s", "rows/s", "x raw")
    lines: list[str] = []
    operation = None
    for row in rows:
        if row["operation"] != operation:
            operation = row["operation"]
            lines += ["", operation, "  " + _line(header)]
        rows_per_s = f"{row['rows_per_s']:,.0f}" if row["rows_per_s"] else ""
        ratio = f"{row['ratio_to_raw']:.2f}" if row["ratio_to_raw"] is not None else ""
        cells = (
            row["contender"],
            f"{row['median_us']:,.1f}",
            f"{row['p95_us']:,.1f}",
            f"{row['ops_per_s']:,.0f}",
            rows_per_s,
            ratio,
        )
        lines.append("  " + _line(cells))
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The same figures as a Markdown table, for docs/performance.md."""
    lines = [
        "| operation | contender | median µs | p95 µs | ops/s | rows/s | vs raw |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rows_per_s = f"{row['rows_per_s']:,.0f}" if row["rows_per_s"] else ""
        ratio = f"{row['ratio_to_raw']:.2f}" if row["ratio_to_raw"] is not None else ""
        lines.append(
            f"| {row['operation']} | {row['contender']} | {row['median_us']:,.1f} "
            f"| {row['p95_us']:,.1f} | {row['ops_per_s']:,.0f} | {rows_per_s} | {ratio} |"
        )
    return "\n".join(lines)


def _line(cells: tuple[str, ...]) -> str:
    first, *rest = cells
    return f"{first:<34}" + "".join(f"{cell:>12}" for cell in rest)


async def environment(conn: Any) -> dict[str, Any]:
    """Machine, versions and date, for the JSON and docs/performance.md."""
    cur = await conn.execute(
        "SELECT current_setting('server_version'), "
        "(SELECT extversion FROM pg_extension WHERE extname = 'vector')"
    )
    server, pgvector = await cur.fetchone()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "nproc": _nproc(),
        "python": platform.python_version(),
        "postgresql": server,
        "pgvector": pgvector,
        **{name: _version(name) for name in ("psycopg", "psycopg-pool", "sqlalchemy", "pydantic")},
        "darasa-db": _version("darasa-db"),
        "connection": "unix socket",
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
