"""Library commands: index, watch, query, similar, status, reindex.

Each one parses, calls one function of `indexer.service` (or `indexer.daemon.watch`) and
prints: results on stdout, progress and warnings on stderr. Paths are printed as the file
system's own bytes (a name need not be valid UTF-8), and JSON through `path_json.to_json`.
"""

from __future__ import annotations

import contextlib
import sys

import click

from photosearch.cli.errors import user_errors
from photosearch.cli.output import dump, say, warn
from photosearch.indexer import service
from photosearch.indexer.query_terms import image_term, text_term
from photosearch.storage.search_filter import SearchFilter

checkpoint_option = click.option(
    "--checkpoint", type=click.Path(dir_okay=False), default=None,
    help="Model checkpoint (default: the shipped checkpoints/default.safetensors).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
k_option = click.option("-k", "--top", "k", default=10, show_default=True, type=click.IntRange(1, service.MAX_K),
                        help="How many photos to show.")
in_option = click.option("--in", "under", type=click.Path(file_okay=False), default=None,
                         help="Only photos inside this folder.")
from_option = click.option("--from", "date_from", metavar="DATE", default=None,
                           help="Only photos taken on or after DATE: 2023, 2023-06 or 2023-06-14.")
to_option = click.option("--to", "date_to", metavar="DATE", default=None,
                         help="Only photos taken on or before DATE (a month or year means all of it).")
mismatch_option = click.option("--allow-mismatch", is_flag=True,
                               help="Search even if the library was indexed with another model (scores mean little).")
paths_only_option = click.option("--paths-only", is_flag=True,
                                 help="Print only the paths, one per line (-0 is right for any name).")
tag_option = click.option("--tag", default=None, metavar="TAG",
                          help="Only photos with this automatic tag (`photosearch tags` lists them).")
null_option = click.option("-0", "--null", is_flag=True,
                           help="Print only the paths, each ended by a NUL byte instead of a newline (like "
                                "`find -print0`; for `xargs -0`): right for any file name, even one with a newline.")


def _library(ctx: click.Context) -> str | None:
    return (ctx.obj or {}).get("library_dir")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@checkpoint_option
@json_option
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="Embed on the Ray cluster at ADDRESS (host:port), or `auto`: the one started on this "
                   "machine, else a new local one. Needs pip install 'photosearch[cluster]'.")
@click.option("--actors", type=click.IntRange(1), default=None,
              help="With --ray: embedding actors, one model each (default: one per cluster CPU).")
@click.pass_context
def index(ctx, paths, checkpoint, as_json, ray_address, actors) -> None:
    """Scan folders once and index their photos (they are remembered for `watch` and `reindex`).

    \b
    Example:
        photosearch index ~/Pictures /mnt/photos
        photosearch index --ray auto /archive/photos
    """
    if actors is not None and ray_address is None:
        raise click.UsageError("--actors goes with --ray ADDRESS: e.g. photosearch index --ray auto --actors 4 PATH")
    with user_errors(), _progress_bar("indexing") as progress:
        report = service.index(list(paths), _library(ctx), checkpoint, progress, warn, ray=ray_address, actors=actors)
    _print_report(report, as_json)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=False))
@checkpoint_option
@click.option("--settle", default=1.0, show_default=True, type=click.FloatRange(0.05),
              help="Seconds a changed file must stay still before it is indexed.")
@click.option("--poll", default=3.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between checks for folders that vanish or come back (unplugged drives).")
@click.option("--poll-unwatched", default=30.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between two polls of the folders past the inotify watch limit.")
@click.pass_context
def watch(ctx, paths, checkpoint, settle, poll, poll_unwatched) -> None:
    """Index folders, then keep them indexed as photos change; answer queries meanwhile.

    Runs until Ctrl-C or SIGTERM. Folders are remembered: with no PATH, the library's
    folders are watched. One daemon per library; `query` uses it when it runs.

    \b
    Example:
        photosearch watch ~/Pictures &
        photosearch query "dog on a beach"
    """
    from photosearch.indexer.daemon import watch as run_daemon

    with user_errors():
        run_daemon(list(paths), _library(ctx), checkpoint, warn, settle_s=settle, poll_s=poll,
                   poll_unwatched_s=poll_unwatched)


@click.command()
@click.argument("words", nargs=-1, metavar="TEXT")
@k_option
@in_option
@tag_option
@from_option
@to_option
@click.option("--and", "more", multiple=True, metavar="TEXT[:W]",
              help="Another description the photos should also match (weight W, default 1). Repeatable.")
@click.option("--not", "less", multiple=True, metavar="TEXT[:W]",
              help="A description the photos should not match (weight W, default 1). Repeatable.")
@click.option("--like", "like", multiple=True, metavar="PHOTO[:W]", type=click.Path(dir_okay=True),
              help="A photo (any file, in the library or not) the results should look like. Repeatable.")
@checkpoint_option
@mismatch_option
@json_option
@paths_only_option
@null_option
@click.pass_context
def query(ctx, words, k, under, tag, date_from, date_to, more, less, like, checkpoint, allow_mismatch,
          as_json, paths_only, null) -> None:
    """Find the photos that best match a description, best first. Byte-identical copies
    are one result, with the copies listed under it.

    Terms combine: --and adds a description, --not takes one away, --like adds a photo; a
    `:W` suffix weights a term (0 to 10, default 1).

    \b
    Example:
        photosearch query "white chair" -k 5
        photosearch query "running on the sand" --tag seashore
        photosearch query "beach" --and "dog:0.5" --not "night"
        photosearch query "sunset" --like ~/Downloads/this_one.jpg
        photosearch query "beach" --from 2023-06 --to 2023-08 --in ~/Pictures/holidays
        photosearch query -0 -k 3 "red car" | xargs -0 feh
    """
    text = " ".join(words).strip()
    if not text and not like and not more:
        raise click.UsageError('the query is empty: say what to look for, e.g. photosearch query "white chair"')
    with user_errors():  # text that is not UTF-8 is refused in one line (resources.search_text)
        terms = ([text_term(t) for t in more] + [text_term(t, -1) for t in less] + [image_term(p) for p in like])
        where = SearchFilter(folder=under, date_from=date_from, date_to=date_to, tag=tag)
        answer = service.query(text, k, where, _library(ctx), checkpoint, warn, terms=terms,
                               allow_mismatch=allow_mismatch)
    _print_hits(answer, as_json, paths_only, null)


@click.command()
@click.argument("photo", type=click.Path(dir_okay=False))
@k_option
@in_option
@tag_option
@from_option
@to_option
@checkpoint_option
@mismatch_option
@json_option
@paths_only_option
@null_option
@click.pass_context
def similar(ctx, photo, k, under, tag, date_from, date_to, checkpoint, allow_mismatch, as_json, paths_only, null) -> None:
    """Find the photos most like PHOTO: one of the library (itself left out), or any photo
    file, which is read and embedded on the fly (nothing is stored).

    \b
    Example:
        photosearch similar ~/Pictures/2023/beach.jpg -k 5
        photosearch similar ~/Downloads/from_a_friend.jpg --from 2022
        photosearch similar -0 ~/Pictures/2023/beach.jpg | xargs -0 feh
    """
    with user_errors():
        where = SearchFilter(folder=under, date_from=date_from, date_to=date_to, tag=tag)
        answer = service.similar(photo, k, where, _library(ctx), checkpoint, warn, allow_mismatch=allow_mismatch)
    _print_hits(answer, as_json, paths_only, null)


@click.command()
@checkpoint_option
@json_option
@click.pass_context
def status(ctx, checkpoint, as_json) -> None:
    """Show photos indexed, pending and failed (with reasons), the model, the library and the daemon.

    \b
    Example:
        photosearch status
        photosearch status --json | jq .photos
    """
    with user_errors():
        report = service.status(_library(ctx), checkpoint, warn)
    dump(report) if as_json else say(format_status(report))


@click.command()
@checkpoint_option
@json_option
@click.pass_context
def reindex(ctx, checkpoint, as_json) -> None:
    """Embed every photo of the library again, e.g. after switching to another model.

    \b
    Example:
        photosearch reindex --checkpoint checkpoints/minilm.safetensors
    """
    with user_errors(), _progress_bar("reindexing") as progress:
        report = service.reindex(_library(ctx), checkpoint, progress, warn)
    _print_report(report, as_json)


# -- printing ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _progress_bar(label: str):
    """A tqdm bar on stderr (shown on terminals only), fed by (done, total) callbacks."""
    from tqdm import tqdm

    with tqdm(total=0, desc=label, unit="photo", file=sys.stderr, disable=None, leave=False) as bar:
        def update(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        yield update


def _print_hits(answer: dict, as_json: bool, paths_only: bool, null: bool = False) -> None:
    if as_json and null:
        raise click.UsageError("--null prints paths, --json prints JSON: choose one")
    if as_json:
        dump(answer)
        return
    if not answer["results"]:
        where = SearchFilter.from_request(answer).describe()
        warn("no matching photos" + (f" ({where})" if where else ""))
    elif answer.get("no_good_match"):
        warn(f"no good match: even the best photo scores {answer['results'][0]['score']:.2f}, under the "
             "threshold of a likely match; these are the closest there are")
    for hit in answer["results"]:
        if null:
            say(hit["path"], end=b"\0")
        elif paths_only:
            say(hit["path"])
        else:
            taken = f", taken {hit['taken_at'][:10]}" if hit.get("taken_at") else ""
            say(f"{hit['rank']}. {hit['path']} (score: {hit['score']:.3f}{taken})")
            for copy in hit.get("copies", []):  # byte-identical copies, folded under the result
                say(f"   same photo: {copy}")


def _print_report(report: dict, as_json: bool) -> None:
    if as_json:
        dump(report)
        return
    for failure in report["failures"]:
        warn(f"failed: {failure['path']}: {failure['error']}")
    counts = ", ".join(f"{report[n]} {n}" for n in ("added", "updated", "moved", "removed", "unchanged", "failed", "missing"))
    click.echo(f"{counts} ({report['seconds']:.1f} s)")
    if report.get("shards"):
        warn(f"vector shards of this run ({report['actors']} Ray actors): {report['shards']}")


def format_status(report: dict) -> str:
    photos, model, daemon = report["photos"], report["model"], report["daemon"]
    lines = [
        f"library:  {report['library']['path']} ({_size(report['library']['bytes'])})",
        f"photos:   {photos['indexed']} indexed, {photos['pending']} pending, {photos['failed']} failed, "
        f"{photos['missing']} missing ({photos['total']} in all)",
    ]
    lines += [f"  failed: {f['path']}: {f['error']}" for f in report["failed"]]
    lines += [f"folder:   {r['path']}" + ("" if r["present"] else " (missing: unplugged or gone)") for r in report["roots"]]
    lines.append(f"model:    {model['checkpoint']} (" + (f"fingerprint {model['fingerprint']})" if model["fingerprint"]
                                                         else "unusable)"))
    if model.get("problem"):
        lines.append(f"  warning: {model['problem']}")
    if model["mismatch"]:
        lines.append(f"  warning: the library was indexed with model {model['library_fingerprint']}: "
                     "run `photosearch reindex`")
    if report.get("notice"):
        lines.append(f"  warning: {report['notice']}")
    scan = daemon.get("scanning")
    state = "starting" if daemon.get("starting") else "running"
    lines.append("daemon:   " + (f"{state} (pid {daemon['pid']})" if daemon["running"] else "not running")
                 + (f", scanning {scan['done']}/{scan['total']} photos" if scan else ""))
    if daemon.get("waiting"):
        waiting = daemon["waiting"]
        what = f"{waiting['photos']} photos" if waiting["photos"] else "the scan"
        lines.append(f"  waiting to retry: {what} ({waiting['cause']})")
    if daemon.get("unwatched"):
        lines.append(f"  warning: {daemon['unwatched_count']} folder(s) past the inotify watch limit "
                     f"(fs.inotify.max_user_watches) are polled every {daemon['unwatched_poll_s']:g} s "
                     "instead of watched: changes there show up late")
        lines += [f"  unwatched: {path}" for path in daemon["unwatched"]]
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


COMMANDS = [index, watch, query, similar, status, reindex]
