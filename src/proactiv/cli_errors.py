"""How every ``proactiv`` command reports bad input: one line on stderr, printed whole, and exit code 2.

The main command and the task commands (``proactiv kws``, ``proactiv digits``) share it, so an error reads the
same wherever it comes from. Soft wrap: the message is never cut at 80 columns when stderr is not a terminal,
so paths and names in it stay on one line a user can copy and a test can grep.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

err_console = Console(stderr=True, soft_wrap=True)


def fail(err: Exception) -> NoReturn:
    """Print ``error: <err>`` on stderr and leave with exit code 2 (bad input, nothing done)."""
    err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, markup=True)
    raise typer.Exit(2)
