"""The `photosearch` click group. Each command lives in a module named for what it does."""

from __future__ import annotations

import os

# NumPy's OpenBLAS starts a thread per core on import (~60 ms of a cold `photosearch query` on the
# 2-core machine). Nothing here needs BLAS threads: the models run on ONNX Runtime's own threads,
# a query's MiniLM on one BLAS thread, FAISS on its own. The user's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from photosearch.cli import app_cmds, library_cmds, model_cmds  # noqa: E402


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
    ctx.ensure_object(dict)
    ctx.obj["library_dir"] = library_dir


for module in (model_cmds, library_cmds, app_cmds):
    for command in module.COMMANDS:
        cli.add_command(command)
