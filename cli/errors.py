"""Turning the user's mistakes into one-line messages instead of tracebacks."""

from __future__ import annotations

import contextlib
import sys

import click

from photosearch.indexer.path_json import to_bytes


@contextlib.contextmanager
def user_errors():
    """Re-raise the project's user-facing errors as click exceptions (exit 1, one line).

    User-facing: miniclip's `MiniclipError`, storage's `StorageError`, the indexer's
    `ModelMismatchError`, and any exception whose class sets `user_facing = True` (the
    library service's `ServiceError`). Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise click.Abort() from None
    except click.ClickException:
        raise
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        raise UserError(" ".join(str(exc).split()) or type(exc).__name__) from None


class UserError(click.ClickException):
    """A one-line error whose message may quote file names that are not valid UTF-8."""

    def show(self, file=None) -> None:
        click.echo(to_bytes(f"Error: {self.format_message()}"), file=file, err=file is None)


def _is_user_error(exc: Exception) -> bool:
    if getattr(exc, "user_facing", False):
        return True
    # Only modules already imported can have raised: look there, so that checking an
    # error never imports storage or torch.
    names = (("photosearch.miniclip.errors", "MiniclipError"), ("photosearch.storage.errors", "StorageError"),
             ("photosearch.indexer.scanner", "ModelMismatchError"))
    kinds = tuple(getattr(sys.modules[m], n) for m, n in names if m in sys.modules)
    return isinstance(exc, kinds)
