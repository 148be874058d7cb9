"""Files that change under the indexer's feet: deleted between the event and the read, still
being written, a thousand at once, created and deleted over and over. The real watchdog
observer runs; the stand-in model keeps it fast."""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import pytest
from PIL import Image
from watchdog.events import DirCreatedEvent, FileCreatedEvent

import photosearch.indexer.scanner as scanner_module
from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.indexer.watcher import Watcher
from photosearch.storage import INDEXED, Library
from tests.daemon.conftest import draw_noise, eventually
from tests.indexer.stand_ins import ColourModel, make_photo


@contextlib.contextmanager
def watching(tmp_path, settle_s=0.3, **kwargs):
    """(lib, root, watcher, model): a running watcher over tmp_path/photos."""
    root = tmp_path / "photos"
    root.mkdir(exist_ok=True)
    model = ColourModel()
    with Library.open(tmp_path / "lib") as lib, Embedder(model, workers=1) as embedder:
        lib.add_root(root)
        watcher = Watcher(Scanner(lib, embedder), [root], settle_s=settle_s, hold_deletes_s=2.0, **kwargs)
        watcher.start(scan_first=True)
        try:
            quiet(watcher, for_s=0.1)  # the first scan is over: from now on only events count
            yield lib, root, watcher, model
        finally:
            watcher.stop()


def quiet(watcher, for_s: float = 0.5, timeout: float = 30.0) -> None:
    """Wait until the watcher has had nothing to do for `for_s` seconds."""
    deadline, since = time.monotonic() + timeout, None
    while True:
        now = time.monotonic()
        since = (since or now) if watcher.idle() else None
        if since is not None and now - since >= for_s:
            return
        assert now < deadline, "the watcher never went quiet"
        time.sleep(0.05)


def vector_of(path) -> np.ndarray:
    """What the stand-in model makes of the file as it is on disk now."""
    model = ColourModel()
    image = Image.open(path).convert("RGB")
    return model.encode_search_images(model.preprocess(image)[None])[0]


# -- deleted between its event and its processing ---------------------------------------------
@pytest.mark.parametrize("known", [False, True], ids=["new photo", "known photo"])
@pytest.mark.parametrize("moment", ["before it is read", "after it is fingerprinted"])
def test_a_file_deleted_while_it_is_processed_is_gone_not_failed(tmp_path, monkeypatch, ledger, known, moment):
    root = tmp_path / "photos"
    make_photo(root / "stays.jpg", (200, 1, 1))
    photo = root / "flash.jpg"
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), workers=1) as embedder:
        lib.add_root(root)
        scanner = Scanner(lib, embedder)
        if known:
            make_photo(photo, (1, 200, 1))
        scanner.scan()
        make_photo(photo, (1, 100, 200), size=(20, 20))  # new, or changed: it has to be read
        watcher = Watcher(scanner, [root], settle_s=0.0)
        real = scanner_module.file_fingerprint

        def deleting(path, *args):
            if path == str(photo) and moment == "before it is read":
                photo.unlink()
            fingerprint = real(path, *args)
            if path == str(photo):
                photo.unlink()
            return fingerprint

        monkeypatch.setattr(scanner_module, "file_fingerprint", deleting)
        watcher.handler.dispatch(FileCreatedEvent(str(photo)))
        watcher.process_once()
        assert lib.get_by_path(str(photo)) is None  # not "failed: file not found"
        assert lib.photos_by_status("failed") == []
        ledger.assert_consistent(lib, expect=1)


# -- a photo still being written ----------------------------------------------------------------
def test_a_photo_written_slowly_is_embedded_once_complete(tmp_path, ledger):
    source = tmp_path / "source.jpg"
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(source)
    data = source.read_bytes()
    with watching(tmp_path, settle_s=0.5) as (lib, root, watcher, model):
        target = root / "arriving.jpg"
        chunks = np.array_split(np.frombuffer(data, dtype=np.uint8), 12)
        with open(target, "wb") as fh:
            for chunk in chunks:  # about 1.2 s in all, never still for the settle time
                fh.write(chunk.tobytes())
                fh.flush()
                time.sleep(0.1)
                assert lib.get_by_path(str(target)) is None, "looked at a half-written photo"
        record = eventually(lambda: lib.get_by_path(str(target)), 10, "the finished photo")
        assert record.status == INDEXED and record.size == len(data)
        assert model.images_encoded == 1
        assert np.allclose(lib.get_vector(record.id), vector_of(source), atol=1e-6)
        quiet(watcher)
        ledger.assert_consistent(lib, expect=1)


# -- a thousand files at once -------------------------------------------------------------------
def test_a_thousand_files_dropped_at_once(tmp_path, ledger):
    staged = tmp_path / "staged"
    staged.mkdir()
    for i in range(500):
        draw_noise(staged / f"{i:04d}.png", seed=i, size=8)
    with watching(tmp_path, settle_s=0.3) as (lib, root, watcher, model):
        started = time.monotonic()
        for i in range(500, 1000):  # half written straight into the watched folder...
            draw_noise(root / f"{i:04d}.png", seed=i, size=8)
        os.rename(staged, root / "album")  # ...half arriving as one folder
        eventually(lambda: lib.stats()["by_status"]["indexed"] >= 1000, 60, "1000 photos", interval=0.2)
        quiet(watcher)
        seconds = time.monotonic() - started
        assert model.images_encoded == 1000
        ledger.assert_consistent(lib, expect=1000)
    ledger.note("1,000 files dropped at once", f"all 1000 indexed in {seconds:.1f} s")


# -- a burst of creates and deletes of the same name ---------------------------------------------
@pytest.mark.parametrize("ending", ["present", "deleted"])
def test_a_burst_of_creates_and_deletes_of_one_name(tmp_path, ledger, ending):
    with watching(tmp_path, settle_s=0.2) as (lib, root, watcher, model):
        name, other = root / "x.jpg", root / "y.jpg"
        for i in range(40):
            make_photo(name, (6 * i, 255 - 6 * i, 90))
            if i % 3 == 0:
                time.sleep(0.01)  # some of the churn lands between the watcher's polls
            if i % 5 == 4:
                os.replace(name, other)  # renamed over another photo of the same name
            else:
                name.unlink()
        if ending == "present":
            make_photo(name, (250, 250, 0))
        quiet(watcher, for_s=1.0)  # inotify events can trail the last change by 0.5 s
        ledger.assert_consistent(lib)
        for record in lib.photos_under(root):  # each vector is of the file as it is now
            assert np.allclose(lib.get_vector(record.id), vector_of(record.path), atol=1e-6)
        assert (lib.get_by_path(str(name)) is not None) == (ending == "present")


# -- symlinked folders: a loop, and a second name for a folder of the same root --------------------
def test_symlinked_folders_never_give_a_photo_two_paths(tmp_path, ledger):
    root = tmp_path / "photos"
    best = make_photo(root / "2023" / "best" / "sunset.jpg", (250, 120, 20)).parent
    make_photo(tmp_path / "elsewhere" / "drive.jpg", (20, 20, 250))
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), workers=1) as embedder:
        lib.add_root(root)
        scanner = Scanner(lib, embedder)
        os.symlink(best, root / "Favorites")  # a second name, walked after the real folder
        os.symlink(best, root / "0-favorites")  # ...and one walked before it
        os.symlink(root, root / "2023" / "up")  # a loop back to the root
        os.symlink(tmp_path / "elsewhere", root / "other-drive")  # outside the root: followed
        scanner.scan()
        watcher = Watcher(scanner, [root], settle_s=0.0)
        for link in ("Favorites", "0-favorites", "2023/up", "other-drive"):
            watcher.handler.dispatch(DirCreatedEvent(str(root / link)))  # as watchdog reports them
        watcher.process_once()
        watcher.process_once()
        assert sorted(os.path.relpath(r.path, root) for r in lib.photos_under(root)) == [
            "2023/best/sunset.jpg", "other-drive/drive.jpg"]
        ledger.assert_consistent(lib, expect=2)
