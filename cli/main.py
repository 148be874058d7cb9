"""The `photosearch` click group. Each command lives in a module named for what it does."""

from __future__ import annotations

import os
import sys

# NumPy's OpenBLAS starts a thread per core on import (~60 ms of a cold `photosearch query` on the
# 2-core machine). Nothing here needs BLAS threads: the models run on ONNX Runtime's own threads,
# a query's MiniLM on one BLAS thread, FAISS on its own. The user's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from photosearch.cli import app_cmds, browse_cmds, library_cmds, model_cmds  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--library",
    "library_dir",
    type=click.Path(file_okay=False),
    envvar="PHOTOSEARCH_LIBRARY",
    default=None,
    help="Library folder (default: $XDG_DATA_HOME/photosearch or ~/.local/share/photosearch).",
)
@click.version_option(package_name="photosearch", prog_name="photosearch")
@click.pass_context
def cli(ctx: click.Context, library_dir: str | None) -> None:
    """photosearch: private, offline, natural-language search over your photos.

    \b
    Example:
        photosearch index ~/Pictures
        photosearch query "white chair" -k 5
    """
    global _invoked
    _invoked = ctx.invoked_subcommand
    ctx.ensure_object(dict)
    ctx.obj["library_dir"] = library_dir


for module in (model_cmds, library_cmds, browse_cmds, app_cmds):
    for command in module.COMMANDS:
        cli.add_command(command)


# Read-only commands whose process has nothing left to do once the answer is printed: the
# console script leaves them without the interpreter's teardown, which for a cold query spends
# ~0.2 s unloading SQLAlchemy, FAISS and ONNX Runtime (0.60 vs 0.42 s for importing storage
# and opening a library read-only, on the 2-core machine).
LEAVE_AT_ONCE = frozenset({"query", "similar", "status", "duplicates", "tags"})
_invoked: str | None = None


def main() -> None:
    """The `photosearch` console script: `cli`, then an immediate exit after read-only commands."""
    try:
        cli.main(prog_name="photosearch")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if _invoked not in LEAVE_AT_ONCE:
            raise
    if _invoked not in LEAVE_AT_ONCE:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more can be said
            code = code or 1
    os._exit(code)
