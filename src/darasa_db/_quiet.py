"""Warnings that darasa-db silences where they arise, because callers cannot act on them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["runtime_dir_warning_ignored"]


@contextmanager
def runtime_dir_warning_ignored() -> Iterator[None]:
    """Ignore platformdirs' `RuntimeDirWarning` inside the block, and only that warning.

    The embedded server's provider asks platformdirs for a runtime directory as it loads; with
    XDG_RUNTIME_DIR unset (usual in containers and CI) platformdirs warns and falls back to a
    temporary directory, which works. Under `python -W error` or `pytest -W error` that warning
    would otherwise become an exception.
    """
    with warnings.catch_warnings():
        try:
            from platformdirs.api import RuntimeDirWarning
        except ImportError:  # no platformdirs, or one too old to warn
            pass
        else:
            warnings.simplefilter("ignore", RuntimeDirWarning)
        yield
