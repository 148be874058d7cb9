"""Scanner: reconciling folders with the library (adds, changes, moves, removals, roots)."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.folders import PathFilter, walk_photos
from photosearch.indexer.scanner import ModelMismatchError, Scanner
from photosearch.storage import FAILED, INDEXED, MISSING, Library
from tests.indexer.stand_ins import ColourModel, make_photo


def _paths(lib, root):
    return sorted(os.path.relpath(r.path, root) for r in lib.photos_under(root))


def test_new_files_are_embedded_and_stored(tmp_path, lib, scanner, model):
    make_photo(tmp_path / "a.jpg", (255, 0, 0), size=(40, 30))
    make_photo(tmp_path / "sub" / "b.png", (0, 0, 255))
    (tmp_path / "notes.txt").write_text("not a photo")
    report = scanner.scan([tmp_path])
    assert (report.added, report.failed, report.unchanged) == (2, 0, 0)
    assert model.images_encoded == 2
    record = lib.get_by_path(str(tmp_path / "a.jpg"))
    assert (record.status, record.width, record.height) == (INDEXED, 40, 30)
    assert record.model_fingerprint == model.fingerprint
    assert lib.get_meta("model_fingerprint") == model.fingerprint
    blue = ColourModel.preprocess(Image.new("RGB", (4, 4), (0, 0, 255)))
    query = ColourModel().encode_search_images(blue[None])[0]
    assert lib.search(query, 1)[0].photo.path == str(tmp_path / "sub" / "b.png")


def test_unchanged_files_are_not_re_embedded(tmp_path, lib, scanner, model):
    for i in range(6):
        make_photo(tmp_path / f"p{i}.jpg", (i * 40, 0, 0))
    assert scanner.scan([tmp_path]).added == 6
    encoded = model.images_encoded
    report = scanner.scan([tmp_path])
    assert (report.added, report.updated, report.unchanged) == (0, 0, 6)
    assert model.images_encoded == encoded


def test_changed_file_is_re_embedded_touched_file_is_not(tmp_path, lib, scanner, model):
    changed = make_photo(tmp_path / "changed.jpg", (255, 0, 0))
    touched = make_photo(tmp_path / "touched.jpg", (0, 255, 0))
    scanner.scan([tmp_path])
    pid = lib.get_by_path(str(changed)).id
    before = lib.get_vector(pid)
    make_photo(changed, (0, 0, 255), size=(20, 20))
    os.utime(touched, (1_000_000_000, 1_000_000_000))
    encoded = model.images_encoded
    report = scanner.scan([tmp_path])
    assert (report.updated, report.unchanged, report.added) == (1, 1, 0)
    assert model.images_encoded == encoded + 1
    assert lib.get_by_path(str(changed)).id == pid
    assert not np.allclose(lib.get_vector(pid), before)
    assert lib.get_by_path(str(touched)).mtime == 1_000_000_000


def test_deleted_file_is_removed(tmp_path, lib, scanner):
    make_photo(tmp_path / "keep.jpg")
    gone = make_photo(tmp_path / "gone.jpg", (1, 2, 3))
    scanner.scan([tmp_path])
    gone.unlink()
    report = scanner.scan([tmp_path])
    assert report.removed == 1
    assert _paths(lib, tmp_path) == ["keep.jpg"]


@pytest.mark.parametrize("new_name", ["renamed.jpg", "sub/deeper/moved.jpg"])
def test_moved_or_renamed_file_keeps_its_vector(tmp_path, lib, scanner, model, new_name):
    old = make_photo(tmp_path / "old.jpg", (10, 20, 30))
    make_photo(tmp_path / "other.jpg", (200, 200, 200))
    scanner.scan([tmp_path])
    pid = lib.get_by_path(str(old)).id
    vector = lib.get_vector(pid)
    (tmp_path / new_name).parent.mkdir(parents=True, exist_ok=True)
    old.rename(tmp_path / new_name)
    encoded = model.images_encoded
    report = scanner.scan([tmp_path])
    assert (report.moved, report.added, report.removed) == (1, 0, 0)
    assert model.images_encoded == encoded
    moved = lib.get_by_path(str(tmp_path / new_name))
    assert moved.id == pid and moved.status == INDEXED
    np.testing.assert_array_equal(lib.get_vector(pid), vector)


def test_copy_of_an_indexed_photo_reuses_its_vector(tmp_path, lib, scanner, model):
    original = make_photo(tmp_path / "a.jpg", (90, 90, 10))
    scanner.scan([tmp_path])
    shutil.copy(original, tmp_path / "copy.jpg")
    encoded = model.images_encoded
    report = scanner.scan([tmp_path])
    assert (report.added, report.moved) == (1, 0)
    assert model.images_encoded == encoded
    assert _paths(lib, tmp_path) == ["a.jpg", "copy.jpg"]


def test_hidden_junk_and_excluded_are_skipped(tmp_path, lib, model, embedder):
    make_photo(tmp_path / "real.jpg")
    make_photo(tmp_path / "UPPER.JPG", (1, 1, 1))
    for junk in [".hidden/a.jpg", "@eaDir/a.jpg", ".git/a.jpg", "node_modules/a.jpg",
                 "#recycle/a.jpg", ".thumbnails/a.jpg", "$RECYCLE.BIN/a.jpg",
                 ".Trash-1000/a.jpg", "._real.jpg", "Backups/x.jpg", "skip-me.jpg"]:
        make_photo(tmp_path / junk)
    scanner = Scanner(lib, embedder, exclude=["*/Backups/*", "skip-*"])
    report = scanner.scan([tmp_path])
    assert report.added == 2
    assert _paths(lib, tmp_path) == ["UPPER.JPG", "real.jpg"]


def test_bad_files_fail_with_a_reason_and_do_not_stop_the_run(tmp_path, lib, scanner):
    make_photo(tmp_path / "good.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    report = scanner.scan([tmp_path])
    assert (report.added, report.failed) == (1, 2)
    assert dict(report.failures) == {
        str(tmp_path / "empty.jpg"): "empty file",
        str(tmp_path / "text.jpg"): "not a recognised image format",
    }
    record = lib.get_by_path(str(tmp_path / "empty.jpg"))
    assert (record.status, record.error) == (FAILED, "empty file")
    # Fixing the file brings it in on the next scan.
    make_photo(tmp_path / "empty.jpg")
    report = scanner.scan([tmp_path])
    assert (report.updated, report.failed) == (1, 1)  # text.jpg is retried and fails again
    assert lib.get_by_path(str(tmp_path / "empty.jpg")).status == INDEXED


def test_unreadable_file_is_recorded_even_as_root(tmp_path, lib, scanner, monkeypatch):
    """The fingerprint read fails with EACCES (simulated: real file modes are in
    tests/reliability/test_permissions.py, which also runs as root)."""
    import photosearch.indexer.scanner as scanner_module

    make_photo(tmp_path / "ok.jpg")
    locked = make_photo(tmp_path / "locked.jpg", (5, 5, 5))
    real = scanner_module.file_fingerprint

    def deny(path, *args):
        if path == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args)

    monkeypatch.setattr(scanner_module, "file_fingerprint", deny)
    report = scanner.scan([tmp_path])
    assert (report.added, report.failed) == (1, 1)
    assert dict(report.failures)[str(locked)] == "permission denied"
    assert lib.get_by_path(str(locked)).status == FAILED


def test_missing_root_is_kept_and_restored_without_re_embedding(tmp_path, lib, scanner, model):
    root = tmp_path / "drive"
    for i in range(3):
        make_photo(root / f"p{i}.jpg", (i * 60, 10, 10))
    lib.add_root(root)
    scanner.scan()
    query = lib.get_vector(lib.get_by_path(str(root / "p0.jpg")).id)
    root.rename(tmp_path / "unplugged")  # the drive goes away
    report = scanner.scan()
    assert (report.missing, report.removed) == (3, 0)
    assert {r.status for r in lib.photos_under(root)} == {MISSING}
    assert lib.search(query, 5) == []
    assert lib.roots()[0].present is False
    (tmp_path / "unplugged").rename(root)  # and comes back
    encoded = model.images_encoded
    report = scanner.scan()
    assert (report.unchanged, report.added, report.missing) == (3, 0, 0)
    assert model.images_encoded == encoded
    assert {r.status for r in lib.photos_under(root)} == {INDEXED}
    assert lib.roots()[0].present is True
    assert len(lib.search(query, 5)) == 3


def test_empty_mount_point_counts_as_missing(tmp_path, lib, scanner):
    root = tmp_path / "mnt"
    make_photo(root / "a.jpg")
    scanner.scan([root])
    (root / "a.jpg").unlink()  # the mount point is empty while the drive is away
    report = scanner.scan([root])
    assert (report.missing, report.removed) == (1, 0)


def test_root_that_never_existed_is_a_failure(tmp_path, scanner):
    report = scanner.scan([tmp_path / "nope"])
    assert report.failures == [(str(tmp_path / "nope"), "folder not found")]


def test_symlink_loop_is_walked_once(tmp_path):
    make_photo(tmp_path / "a" / "x.jpg")
    os.symlink(tmp_path, tmp_path / "a" / "up")  # a -> root -> a -> ...
    os.symlink(tmp_path / "a", tmp_path / "again")  # the same folder twice
    errors = []
    found = list(walk_photos(str(tmp_path), PathFilter(), lambda p, r: errors.append(p)))
    assert [os.path.relpath(f.path, tmp_path) for f in found] in (["a/x.jpg"], ["again/x.jpg"])
    assert errors == []


def test_progress_reaches_total(tmp_path, lib, embedder):
    for i in range(5):
        make_photo(tmp_path / f"{i}.jpg", (i, i, i))
    calls = []
    scanner = Scanner(lib, embedder, batch_size=2, on_progress=lambda d, t: calls.append((d, t)))
    scanner.scan([tmp_path])
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_other_model_is_refused(tmp_path, lib, scanner):
    make_photo(tmp_path / "a.jpg")
    scanner.scan([tmp_path])
    other = ColourModel()
    other.fingerprint = "another-model"
    with Embedder(other) as emb:
        with pytest.raises(ModelMismatchError, match="reindex"):
            Scanner(lib, emb).scan([tmp_path])
        lib.clear_vectors()  # what a reindex does first: now the new model is adopted
        report = Scanner(lib, emb).scan([tmp_path])
    assert report.updated == 1
    assert lib.get_meta("model_fingerprint") == "another-model"
    assert lib.get_by_path(str(tmp_path / "a.jpg")).status == INDEXED


class _Killed(Exception):
    pass


def test_crash_mid_scan_resumes_without_duplicates(tmp_path, model):
    photos = tmp_path / "photos"
    for i in range(10):
        make_photo(photos / f"{i:02d}.jpg", (i * 20, 0, 0))

    class DiesOnThirdBatch(ColourModel):
        def encode_search_images(self, images):
            if self.images_encoded == 8:
                raise _Killed()  # as if the process were killed while encoding batch 3
            return super().encode_search_images(images)

    with Library.open(tmp_path / "lib") as lib, Embedder(DiesOnThirdBatch(), batch_size=4) as emb:
        with pytest.raises(_Killed):
            Scanner(lib, emb, batch_size=4).scan([photos])
    with Library.open(tmp_path / "lib") as lib, Embedder(model) as emb:
        assert len(lib.photos_under(photos)) == 8
        encoded = model.images_encoded
        report = Scanner(lib, emb, batch_size=4).scan([photos])
        assert (report.added, report.unchanged) == (2, 8)
        assert model.images_encoded == encoded + 2
        assert lib.stats()["vectors"] == 10


def test_sync_paths_and_move_path(tmp_path, lib, scanner, model):
    a = make_photo(tmp_path / "a.jpg", (1, 100, 1))
    make_photo(tmp_path / "album" / "b.jpg", (1, 1, 100))
    assert scanner.sync_paths([a, tmp_path / "album"]).added == 2
    pid = lib.get_by_path(str(a)).id
    a.rename(tmp_path / "c.jpg")
    assert scanner.move_path(a, tmp_path / "c.jpg").moved == 1
    assert lib.get_by_path(str(tmp_path / "c.jpg")).id == pid
    (tmp_path / "album").rename(tmp_path / "renamed")
    assert scanner.move_path(tmp_path / "album", tmp_path / "renamed").moved == 1
    assert scanner.sync_paths([tmp_path / "renamed"]).unchanged == 1
    shutil.rmtree(tmp_path / "renamed")
    assert scanner.sync_paths([tmp_path / "renamed", tmp_path / "never-was.jpg"]).removed == 1
    (tmp_path / "c.jpg").rename(tmp_path / "c.jpg.bak")
    assert scanner.move_path(tmp_path / "c.jpg", tmp_path / "c.jpg.bak").removed == 1
    assert lib.photos_under(tmp_path) == []


_KILLED_SCAN = """
import sys, time
from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.storage import Library
from tests.indexer.stand_ins import ColourModel

class Slow(ColourModel):
    def encode_search_images(self, images):
        time.sleep(0.15)
        return super().encode_search_images(images)

lib = Library.open(sys.argv[1])
with Embedder(Slow(), batch_size=2, workers=1) as emb:
    Scanner(lib, emb, batch_size=2, save_every=1000,
            on_progress=lambda done, total: print(done, flush=True)).scan([sys.argv[2]])
"""


@pytest.mark.slow
def test_sigkill_mid_scan_loses_at_most_one_batch(tmp_path, model):
    import signal
    import subprocess
    import sys

    photos = tmp_path / "photos"
    for i in range(20):
        make_photo(photos / f"{i:02d}.jpg", (i * 12, 50, 50))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SCAN, str(tmp_path / "lib"), str(photos)],
        cwd=repo, stdout=subprocess.PIPE, text=True,
    )
    try:
        for line in proc.stdout:
            if int(line) >= 6:  # a few batches are committed, FAISS never saved
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        proc.stdout.close()
    with Library.open(tmp_path / "lib") as lib, Embedder(model) as emb:
        kept = len(lib.photos_under(photos))
        assert 6 <= kept < 20
        assert lib.stats()["vectors"] == kept  # every stored row has its vector
        report = Scanner(lib, emb).scan([photos])
        assert (report.added, report.unchanged) == (20 - kept, kept)
        assert model.images_encoded == 20 - kept
        assert lib.stats()["vectors"] == 20
        assert len(lib.search(lib.get_vector(lib.photos_under(photos)[0].id), 50)) == 20


def test_stop_event_ends_the_scan_early_and_keeps_what_was_committed(tmp_path, lib, model):
    import threading

    gone = make_photo(tmp_path / "zz-gone.jpg", (1, 1, 1))
    with Embedder(model, batch_size=2, workers=1) as embedder:
        Scanner(lib, embedder).scan([tmp_path])
        gone.unlink()
        for i in range(40):
            make_photo(tmp_path / f"{i:02d}.jpg", (i * 6, 0, 0))
        stop = threading.Event()
        stop_soon = lambda done, total: done >= 2 and stop.set()  # noqa: E731
        scanner = Scanner(lib, embedder, batch_size=2, on_progress=stop_soon)
        report = scanner.scan([tmp_path], stop=stop)
        assert report.interrupted
        assert 2 <= report.added < 20  # the batch in flight and the decode window, no more
        assert report.removed == 0  # removals wait for a complete scan
        assert len(lib.photos_under(tmp_path)) == report.added + 1
        report = Scanner(lib, embedder).scan([tmp_path])
    assert not report.interrupted and report.removed == 1
    assert len(lib.photos_under(tmp_path)) == 40


@pytest.mark.parametrize("order", ["destination first", "source first"])
def test_move_between_roots_in_one_scan(tmp_path, lib, scanner, model, order):
    first, second = tmp_path / "one", tmp_path / "two"
    make_photo(first / "p.jpg", (3, 33, 133))
    make_photo(first / "stay.jpg", (1, 1, 1))
    make_photo(second / "other.jpg", (2, 2, 2))
    scanner.scan([first, second])
    pid = lib.get_by_path(str(first / "p.jpg")).id
    (first / "p.jpg").rename(second / "p.jpg")
    encoded = model.images_encoded
    roots = [second, first] if order == "destination first" else [first, second]
    report = scanner.scan(roots)
    assert (report.moved, report.removed, report.added) == (1, 0, 0)
    assert lib.get_by_path(str(second / "p.jpg")).id == pid
    assert model.images_encoded == encoded
