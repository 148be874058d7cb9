"""Turning the user's mistakes into one-line messages instead of tracebacks."""

from __future__ import annotations

import contextlib

import click


@contextlib.contextmanager
def user_errors():
    """Re-raise the project's user-facing errors as click exceptions (exit 1, one line)."""
    from miniclip.errors import MiniclipError

    try:
        yield
    except MiniclipError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
