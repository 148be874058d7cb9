"""--from/--to and --in through the CLI on a tiny library: taken-at from EXIF (with and
without offset) or mtime, shown in results and JSON; filters applied inside the search."""

from __future__ import annotations

import os
import re

import pytest
from PIL import ExifTags, Image

from tests.cli.test_library_cli import assert_one_line_error
from tests.daemon.conftest import cli_json, draw, run_cli


def dated(path, when: str, offset: str | None = None, colour=(200, 30, 30)):
    exif = Image.Exif()
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = when
    if offset:
        sub[0x9011] = offset
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 48), colour).save(path, exif=exif)
    return path


@pytest.fixture(scope="module")
def dated_library(tmp_path_factory, tiny_checkpoint):
    base = tmp_path_factory.mktemp("dated")
    root, lib = base / "photos", base / "lib"
    dated(root / "june14.jpg", "2023:06:14 18:30:05", "+02:00", (200, 30, 30))
    dated(root / "june30.jpg", "2023:06:30 23:59:59", None, (30, 200, 30))
    dated(root / "july1.jpg", "2023:07:01 00:00:00", "-05:00", (30, 30, 200))
    dated(root / "trip" / "aug.jpg", "2023:08:10 10:00:00", None, (200, 200, 30))
    dated(root / "trip" / "2022.jpg", "2022:12:31 12:00:00", None, (200, 30, 200))
    plain = draw(root / "plain.png", "red", "circle")
    os.utime(plain, (1_600_000_000, 1_600_000_000))  # 2020-09-13 (UTC): no EXIF, so the file time
    cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)
    return {"root": root, "lib": lib, "ckpt": tiny_checkpoint}


def query(library, *args):
    return cli_json("--library", library["lib"], "query", "a red photo", "-k", "10", "--checkpoint", library["ckpt"], *args)


def names(answer):
    return sorted(os.path.basename(hit["path"]) for hit in answer["results"])


def test_taken_at_is_shown_in_json_as_iso_8601(dated_library):
    hits = {os.path.basename(h["path"]): h["taken_at"] for h in query(dated_library)["results"]}
    assert hits["june14.jpg"] == "2023-06-14T18:30:05+02:00"
    assert hits["june30.jpg"] == "2023-06-30T23:59:59"
    assert hits["july1.jpg"] == "2023-07-01T00:00:00-05:00"
    assert hits["plain.png"].startswith("2020-09-1")  # the mtime, in this machine's zone, with its offset
    assert hits["plain.png"][19] in "+-"


def test_a_month_means_the_whole_month(dated_library):
    assert names(query(dated_library, "--from", "2023-06", "--to", "2023-06")) == ["june14.jpg", "june30.jpg"]
    assert names(query(dated_library, "--from", "2023-06-30", "--to", "2023-07-01")) == ["july1.jpg", "june30.jpg"]
    assert names(query(dated_library, "--to", "2022")) == ["2022.jpg", "plain.png"]
    assert names(query(dated_library, "--from", "2023-07")) == ["aug.jpg", "july1.jpg"]


def test_dates_combine_with_in_and_with_similar(dated_library):
    trip = dated_library["root"] / "trip"
    assert names(query(dated_library, "--in", trip, "--from", "2023")) == ["aug.jpg"]
    answer = cli_json("--library", dated_library["lib"], "similar", dated_library["root"] / "june14.jpg",
                      "--from", "2023-06", "--to", "2023-07")
    assert names(answer) == ["july1.jpg", "june30.jpg"]
    assert (answer["from"], answer["to"]) == ("2023-06", "2023-07")


def test_k_results_come_back_whenever_k_match(dated_library):
    answer = query(dated_library, "--from", "2023", "-k", "4")
    assert len(answer["results"]) == 4


def test_the_date_is_printed_with_each_result(dated_library):
    result = run_cli("--library", dated_library["lib"], "query", "red", "--from", "2023-06-14", "--to", "2023-06-14",
                     "--checkpoint", dated_library["ckpt"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"1\. /\S+/june14\.jpg \(score: -?\d\.\d{3}, taken 2023-06-14\)\n", result.stdout), result.stdout


def test_no_photo_in_the_range_says_so(dated_library):
    result = run_cli("--library", dated_library["lib"], "query", "red", "--from", "2030", "--checkpoint", dated_library["ckpt"])
    assert result.exit_code == 0 and result.stdout == ""
    assert "no matching photos (taken 2030 to …)" in result.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--from", "2023-13"], "--from '2023-13' is not a real date: expected a year (2023), a month (2023-06) or a day (2023-06-14)"),
    (["--to", "last week"], "--to 'last week'"),
    (["--from", "2024", "--to", "2023"], "swap them"),
])
def test_bad_dates_are_one_line_errors(dated_library, args, says):
    result = run_cli("--library", dated_library["lib"], "query", "red", *args, "--checkpoint", dated_library["ckpt"])
    assert_one_line_error(result, says=says)


def test_in_a_folder_that_does_not_exist_or_holds_nothing_indexed(dated_library, tmp_path):
    for command in (["query", "red"], ["similar", str(dated_library["root"] / "june14.jpg")]):
        result = run_cli("--library", dated_library["lib"], *command, "--in", tmp_path / "no" / "such",
                         "--checkpoint", dated_library["ckpt"])
        assert_one_line_error(result, says="no such folder")
        result = run_cli("--library", dated_library["lib"], *command, "--in", tmp_path, "--checkpoint", dated_library["ckpt"])
        assert_one_line_error(result, says="no indexed photo in that folder")
