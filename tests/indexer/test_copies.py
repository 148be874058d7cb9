"""Issue 12 part 2: N byte-identical copies cost O(N): one model call for the content and one
library look-up per fingerprint, however many copies there are."""

from __future__ import annotations

import shutil

from photosearch.indexer import copies as copies_module
from tests.indexer.stand_ins import make_photo


def _copies(folder, n):
    first = make_photo(folder / "0.jpg", (200, 30, 30))
    for i in range(1, n):
        shutil.copyfile(first, folder / f"{i}.jpg")


def test_copies_share_one_lookup_and_reuse_the_vector(tmp_path, lib, scanner, model, monkeypatch):
    lookups = []
    real_load = copies_module.Copies._load

    def counting_load(self, fingerprint, vanished):
        if fingerprint not in self._movable:
            lookups.append(fingerprint)
        return real_load(self, fingerprint, vanished)

    monkeypatch.setattr(copies_module.Copies, "_load", counting_load)
    calls = []
    real_find = lib.find_by_fingerprint
    monkeypatch.setattr(lib, "find_by_fingerprint", lambda fp: calls.append(fp) or real_find(fp))
    _copies(tmp_path, 60)
    report = scanner.scan([tmp_path])
    assert report.added == 60
    # Only the chunks fingerprinted before the first vector was stored (the embedder's
    # read-ahead) go to the model; the rest reuse that vector.
    assert model.images_encoded < 30
    assert len(lookups) == 1 and len(calls) == 1  # not one per copy, not one per copy pair
    vectors = {tuple(lib.get_vector(r.id)) for r in lib.photos_under(tmp_path)}
    assert len(vectors) == 1


def test_a_copy_and_a_move_of_one_content_in_one_scan(tmp_path, lib, scanner, model):
    _copies(tmp_path, 3)
    scanner.scan([tmp_path])
    moved_id = lib.get_by_path(str(tmp_path / "2.jpg")).id
    (tmp_path / "2.jpg").rename(tmp_path / "moved.jpg")
    shutil.copyfile(tmp_path / "0.jpg", tmp_path / "copy.jpg")
    encoded = model.images_encoded
    report = scanner.scan([tmp_path])
    assert (report.moved, report.added, report.removed) == (1, 1, 0)
    assert model.images_encoded == encoded
    # Same bytes: either new name may take over the old row; the other is a copy.
    new_ids = {lib.get_by_path(str(tmp_path / name)).id for name in ("copy.jpg", "moved.jpg")}
    assert moved_id in new_ids and len(new_ids) == 2
    assert lib.get_by_path(str(tmp_path / "2.jpg")) is None
