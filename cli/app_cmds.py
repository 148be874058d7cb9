"""Commands for people trying photosearch out: `demo` and `serve` (the local web page).

Each parses, calls `indexer.demo` or `indexer.web`, and prints: results on stdout, progress
and hints on stderr.
"""

from __future__ import annotations

import sys

import click
from click.core import ParameterSource

from photosearch.cli.errors import user_errors
from photosearch.cli.library_cmds import _print_hits, _progress_bar, checkpoint_option
from photosearch.cli.output import say, warn

DEFAULT_PORT = 8765  # = indexer.web.DEFAULT_PORT (importing it here would slow down --help)


@click.command()
@click.option("--batch", is_flag=True, help="Run the predefined queries instead of asking for them.")
@click.option("-k", "--top", "k", default=5, show_default=True, type=click.IntRange(1, 20),
              help="How many photos to show per query.")
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Where the result grids (PNG) are saved.")
@click.option("--photos", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of photos to index for the demo (default: the bundled examples/photos/images).")
@checkpoint_option
@click.pass_context
def demo(ctx, batch, k, results_dir, photos, checkpoint) -> None:
    """Index the bundled demo photos, then search them: type a query, get the best photos.

    Uses its own library (~/.local/share/photosearch-demo, or $XDG_DATA_HOME/photosearch-demo)
    unless --library is given; photos already indexed are not embedded again. Each query's
    results are printed and saved as a grid image under --results-dir. An empty line or
    Ctrl-D ends it.

    \b
    Example:
        photosearch demo
        photosearch demo --batch -k 3
    """
    from photosearch.indexer.demo import BATCH_QUERIES, Demo
    from photosearch.indexer.resources import ServiceError

    with user_errors(), Demo(_explicit_library(ctx), photos, checkpoint, results_dir, warn) as session:
        with _progress_bar("indexing demo photos") as progress:
            report = session.prepare(progress)
        if report is not None:
            warn(f"demo library {session.library}: {report['added'] + report['updated']} photos embedded, "
                 f"{report['unchanged']} already indexed, {report['failed']} failed")
        for text in BATCH_QUERIES if batch else _typed_queries():
            if batch:
                say(f"query: {text}")
            try:
                answer = session.ask(text, k)
            except ServiceError as exc:  # a query the model cannot read: say so, take the next one
                warn(f"Error: {exc}")
                continue
            _print_hits(answer, as_json=False, paths_only=False)
            say(f"grid: {answer['grid']}")
        warn(session.serve_hint())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback shows your photos to the network.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests that name the server NAME (a host name or address) in their "
                   "Host header; repeat for more. Loopback names and the --host address are always allowed.")
@click.option("--open", "open_browser", is_flag=True,
              help="Also open the page in your web browser (through a private file, so the token "
                   "never shows on a command line).")
@checkpoint_option
@click.pass_context
def serve(ctx, host, port, allowed_hosts, open_browser, checkpoint) -> None:
    """Search the library from a local web page: thumbnails, scores, full photos, "more like this".

    Uses the daemon (`photosearch watch`) when it runs, else loads the model once itself.
    Prints the page's URL, then serves until Ctrl-C. The URL carries a token drawn for this
    run: only a browser that opened it (it then keeps a cookie) gets answers, so other
    accounts on the machine cannot look through the page. Requests must name the server by
    a loopback name, the --host address or a name given with --allow-host (to reach it as
    http://mybox.lan:8765 from another machine: --host 0.0.0.0 --allow-host mybox.lan).

    \b
    Example:
        photosearch serve
        photosearch --library ~/.local/share/photosearch-demo serve --port 8000
        photosearch serve --open
        photosearch serve --host 0.0.0.0 --allow-host mybox.lan
    """
    from photosearch.indexer.web import serve as serve_page

    def ready(url: str) -> None:
        click.echo(url)
        warn(f"serving the library's search page on {url} (Ctrl-C to stop)")
        if open_browser:
            from photosearch.indexer import resources
            from photosearch.indexer.web_access import open_in_browser

            open_in_browser(url, resources.library_folder(library_dir))

    library_dir = (ctx.obj or {}).get("library_dir")
    with user_errors():
        serve_page(library_dir, host, port, checkpoint, warn, on_ready=ready,
                   allowed_hosts=allowed_hosts)


def _explicit_library(ctx: click.Context) -> str | None:
    """--library when given on the command line; $PHOTOSEARCH_LIBRARY does not redirect the demo."""
    group = ctx.find_root()
    if group.get_parameter_source("library_dir") is ParameterSource.COMMANDLINE:
        return group.params.get("library_dir")
    return None


def _typed_queries():
    """Queries typed at the prompt (on stderr), until an empty line or end of input."""
    while True:
        click.echo("query> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line.strip():
            return
        yield line.strip()


COMMANDS = [demo, serve]
