"""`photosearch query` without a daemon on a library whose index file fell behind (a writer
stopped before saving): answered from the file as it is, with one warning line, no rebuild."""

from __future__ import annotations

from photosearch.storage import Library
from photosearch.storage.index_file import INDEX_NAME
from tests.conftest import COLOURS, SHAPES
from tests.daemon.conftest import cli_json, draw, run_cli


def test_query_serves_a_stale_index_file_with_one_warning_line(tmp_path, tiny_checkpoint):
    root, folder = tmp_path / "photos", tmp_path / "lib"
    for i, colour in enumerate(list(COLOURS)[:3]):
        for shape in SHAPES:
            draw(root / f"{colour}_{shape}.png", colour, shape, variant=i)
    cli_json("--library", folder, "index", root, "--checkpoint", tiny_checkpoint)
    saved = (folder / INDEX_NAME).stat().st_mtime_ns
    writer = Library.open(folder)  # a writer that forgets a photo, then dies before saving
    gone = writer.photos_under(root)[0]
    writer.remove(gone.id)
    writer._engine.dispose()
    result = run_cli("--library", folder, "query", "a shape", "-k", "50", "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "vector update(s)" in warnings[0] and "`photosearch index`" in warnings[0]
    assert gone.path not in result.stdout and len(result.stdout.splitlines()) == 3 * len(SHAPES) - 1
    assert (folder / INDEX_NAME).stat().st_mtime_ns == saved  # nothing written, nothing rebuilt
