"""Commands that look over the whole library: duplicates and tags.

Each parses, calls one function of `indexer.service` and prints (results on stdout).
"""

from __future__ import annotations

import click

from photosearch.cli.errors import user_errors
from photosearch.cli.library_cmds import _library, _size, checkpoint_option, json_option
from photosearch.cli.output import dump, say, warn
from photosearch.indexer import service


@click.command()
@click.option("--near", is_flag=True,
              help="Also near-duplicates: the same photo resized, re-encoded, slightly cropped or edited.")
@checkpoint_option
@json_option
@click.pass_context
def duplicates(ctx, near, checkpoint, as_json) -> None:
    """List photos held more than once, largest first in each group, so you can choose what to keep.

    Without --near: byte-identical copies. With it: also photos that look the same (their
    search vectors and perceptual hashes agree). Nothing is deleted.

    \b
    Example:
        photosearch duplicates
        photosearch duplicates --near --json | jq '.groups[].photos[1:][].path'
    """
    with user_errors():
        answer = service.duplicates(near, _library(ctx), checkpoint, warn)
    if as_json:
        dump(answer)
        return
    if answer["unhashed"]:
        warn(f"{answer['unhashed']} photos were indexed before near-duplicates could be told: "
             "run `photosearch reindex` to include them")
    if not answer["groups"]:
        warn("no duplicates" if near else "no byte-identical copies (--near also finds resized or edited ones)")
    for number, group in enumerate(answer["groups"], 1):
        say(f"group {number} ({'same file content' if group['kind'] == 'exact' else 'look alike'}, "
            f"{len(group['photos'])} photos, {_size(group['bytes'])}):")
        for photo in group["photos"]:
            pixels = f"{photo['width']}x{photo['height']}" if photo["width"] else "?"
            when = photo["taken_at"] or f"modified {photo['modified']}"
            say(f"  {photo['path']}  {pixels}  {_size(photo['size'])}  {when}")


@click.command()
@checkpoint_option
@json_option
@click.pass_context
def tags(ctx, checkpoint, as_json) -> None:
    """List the automatic tags (the ImageNet classes the model sees) with how many photos have each.

    \b
    Example:
        photosearch tags
        photosearch query "a dog running" --tag "golden retriever"
    """
    with user_errors():
        answer = service.tags(_library(ctx), checkpoint, warn)
    if as_json:
        dump(answer)
        return
    if answer.get("notice"):
        warn(f"warning: {answer['notice']}")
    if not answer["tags"]:
        warn("no tags yet: photos get them when indexed (`photosearch reindex` tags a library indexed before)")
    for row in answer["tags"]:
        say(f"{row['photos']:>6}  {row['name']}")


COMMANDS = [duplicates, tags]
