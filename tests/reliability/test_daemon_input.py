"""The daemon with the real (tiny) model: every bad file of the gallery dropped into a watched
folder at once, beside a symlink loop, is recorded with its reason and the daemon keeps
indexing; an EXIF-rotated photo embeds like the upright one."""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from photosearch.indexer import daemon, ipc
from photosearch.indexer.embedder import Embedder
from photosearch.miniclip.runtime import load_search_model
from photosearch.storage import FAILED, INDEXED, Library
from tests.daemon.conftest import draw, eventually
from tests.reliability.bad_files import GALLERY


@contextlib.contextmanager
def running_daemon(root, library, checkpoint):
    """`photosearch watch` in a thread of this process; yields its log lines."""
    logs, stop, errors = [], threading.Event(), []

    def run():
        try:
            daemon.watch([str(root)], str(library), str(checkpoint), log=logs.append,
                         settle_s=0.2, poll_s=0.5, stop=stop)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="test-daemon")
    thread.start()
    try:
        eventually(lambda: errors or any("scan done" in line for line in logs), 60, "the first scan")
        assert not errors, errors
        yield logs
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and not errors, errors


def settled(library, paths) -> dict | None:
    """{path: record} once every path has a row that is indexed or failed."""
    with Library.open(library, read_only=True) as lib:
        records = {p: lib.get_by_path(p) for p in paths}
    done = all(r is not None and r.status in (INDEXED, FAILED) for r in records.values())
    return records if done else None


def test_the_daemon_keeps_going_through_every_bad_file(tmp_path, tiny_checkpoint, ledger):
    root, library = tmp_path / "photos", tmp_path / "lib"
    draw(root / "first.png", "red", "circle")
    with running_daemon(root, library, tiny_checkpoint) as logs:
        (root / "loop").mkdir()
        os.symlink(root, root / "loop" / "up")  # photos/loop/up/loop/up/... forever
        os.symlink(root / "loop", root / "again")  # the same folder under a second name
        paths = {s.name: str(s.write(root / "dropped")) for s in GALLERY}
        records = eventually(lambda: settled(library, paths.values()), 60, "every bad file to be recorded")
        for specimen in GALLERY:
            record = records[paths[specimen.name]]
            if specimen.reason is None:
                assert record.status == INDEXED, (specimen.name, record.error)
            else:
                assert record.status == FAILED and specimen.reason in record.error, (specimen.name, record)
        status = ipc.request(library, {"op": "status"})  # it still answers...
        failed = {f["path"]: f["error"] for f in status["failed"]}
        assert failed == {p: records[p].error for p in paths.values() if records[p].status == FAILED}
        after = draw(root / "after.png", "blue", "square")  # ...and still indexes
        eventually(lambda: settled(library, [str(after)]), 30, "a good photo after the bad ones")
    assert not [line for line in logs if "Traceback" in line or "could not be applied" in line], logs
    with Library.open(library) as lib:
        ledger.assert_consistent(lib, expect=2 + len(GALLERY))


INVERSE = {  # stored pixels = upright pixels transposed by this, so that EXIF undoes it
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
}


def upright_scene() -> Image.Image:
    """Something that looks different upside down or sideways: a sky over red and blue."""
    image = Image.new("RGB", (96, 64), (250, 250, 250))
    draw_ = ImageDraw.Draw(image)
    draw_.rectangle((0, 0, 96, 20), fill=(90, 160, 240))
    draw_.ellipse((6, 28, 40, 60), fill=(220, 30, 30))
    draw_.polygon([(60, 60), (78, 26), (94, 60)], fill=(30, 30, 200))
    return image


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    return load_search_model(tiny_checkpoint)  # the serving model, as the daemon loads it


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("orientation", sorted(INVERSE))
def test_an_exif_rotated_photo_embeds_like_the_upright_one(tmp_path, tiny_model, orientation):
    upright = upright_scene()
    stored = upright.transpose(INVERSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    files = {"upright": tmp_path / "upright.jpg", "tagged": tmp_path / "tagged.jpg",
             "untagged": tmp_path / "untagged.jpg"}
    upright.save(files["upright"], quality=95)
    stored.save(files["tagged"], quality=95, exif=exif.tobytes())
    stored.save(files["untagged"], quality=95)  # the same pixels, nobody saying how to turn them
    with Embedder(tiny_model, workers=1) as embedder:
        vectors, errors = embedder.embed_files(files.values())
    assert not errors
    v = {name: vectors[str(path)] for name, path in files.items()}
    assert cosine(v["upright"], v["tagged"]) > 0.99
    assert cosine(v["upright"], v["tagged"]) > cosine(v["upright"], v["untagged"])


def test_a_status_listing_thousands_of_failed_photos_still_arrives(tmp_path):
    """A folder of broken files makes a long status reply (every failure with its reason)."""
    failed = [{"path": f"/photos/backup/{i:06d}.jpg", "error": "truncated or corrupt image data"}
              for i in range(40_000)]  # about 3.5 MB of JSON
    with ipc.SocketServer(tmp_path, lambda request: {"failed": failed}, log=lambda m: None):
        assert ipc.request(tmp_path, {"op": "status"})["failed"] == failed
