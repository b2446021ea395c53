"""The CLI's error contract, shared by every typer app: a UserError is one red line, exit 2."""

from __future__ import annotations

import functools

import typer

from .errors import UserError
from .io import WRITE_ERRNOS


def user_errors(fn):
    """Turn a UserError, or a file operation refused by the OS (permissions, full disk), into one line on
    stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except OSError as exc:  # a folder or disk that refused a write no check foresaw
            if exc.errno not in WRITE_ERRNOS:
                raise
            # a read refused for permissions lands here too, so the line names no direction
            why = (exc.strerror or str(exc)).lower()
            typer.secho(f"error: {exc.filename or 'a file'}: {why}; check its permissions and free space",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:  # SIGINT / SIGTERM: training has said what it saved
            raise typer.Exit(getattr(exc, "code", 130)) from None

    return wrapper
