"""`mmftraj data ...`: dataset generation and conversion commands (heavy imports stay lazy)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
