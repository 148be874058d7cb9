"""`photosearch index --ray`: the embedding on a real local Ray cluster, started by the fixture.

The cluster is `ray.init` with two CPUs on this machine (its workers are separate processes,
as on a cluster's nodes). ~200 photos drawn in tmp_path are embedded on it with the shipped
model; the vectors must equal the single-machine embedder's, each photo stored once, and a
worker killed with SIGKILL mid-run must cost nothing: no photo lost, none stored twice.
Skips, with the reason, only where Ray is not installed (`pip install -e '.[cluster]'`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from photosearch.cli.main import cli
from photosearch.indexer import service
from photosearch.indexer.embedder import Embedder
from photosearch.indexer.ray_embed import INSTALL_HINT, RayUnavailable, import_ray
from photosearch.indexer.ray_scan import RayModel, scan_on_ray
from photosearch.storage import Library
from photosearch.storage.vector_shards import read_shards
from PIL import Image, ImageDraw

PHOTOS = 200
ACTOR_TITLE = "MapBatches(EmbedPhotos)"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' runs these tests")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False,
             logging_level="ERROR")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """200 distinct small photos: noise under a shape of varying colour and place."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(18)
    for i in range(PHOTOS):
        pixels = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        x, y = rng.integers(0, 64, 2)
        ImageDraw.Draw(image).ellipse([x, y, x + 60, y + 30], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        image.save(folder / f"photo-{i:03d}.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def single_machine(photos) -> dict[str, np.ndarray]:
    """The single-machine embedder's vectors, by path."""
    model = service.load_model(None)
    with Embedder(model) as embedder:
        vectors, errors = embedder.embed_files(sorted(str(p) for p in photos.iterdir()))
    assert not errors
    return vectors


def _assert_same_as_single_machine(library: Path, reference: dict[str, np.ndarray]) -> None:
    with Library.open(library, read_only=True) as lib:
        stats = lib.stats()
        assert stats["photos"] == PHOTOS and stats["by_status"]["indexed"] == PHOTOS
        assert stats["vectors"] == PHOTOS
        for path, expected in reference.items():
            record = lib.get_by_path(path)
            got = lib.get_vector(record.id)
            cosine = float(got @ expected / np.linalg.norm(got) / np.linalg.norm(expected))
            assert cosine >= 0.9999, (path, cosine)
        ids = {lib.get_by_path(path).id for path in reference}
    return ids


def _shard_ids(folder: Path) -> list[int]:
    return [int(i) for shard in read_shards(folder) for i in shard.ids]


def test_ray_vectors_equal_single_machine_and_each_photo_is_stored_once(ray_cluster, photos, single_machine, tmp_path):
    library = tmp_path / "lib"
    report = service.index([str(photos)], str(library), ray="auto", actors=2)
    assert report["added"] == PHOTOS and report["failed"] == 0 and report["actors"] == 2
    ids = _assert_same_as_single_machine(library, single_machine)
    shard_ids = _shard_ids(Path(report["shards"]))
    assert sorted(shard_ids) == sorted(ids)  # every stored vector in exactly one shard row
    with Library.open(library, read_only=True) as lib:
        for shard in read_shards(report["shards"]):
            for pid, vector in zip(shard.ids, shard.vectors):
                assert np.array_equal(lib.get_vector(int(pid)), vector)
    again = service.index([str(photos)], str(library), ray="auto")
    assert again["unchanged"] == PHOTOS and again["added"] == 0 and again["shards"] is None


def _actor_pids() -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if ACTOR_TITLE.encode() in fh.read():
                        pids.append(int(name))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the actor processes in /proc")
def test_a_worker_killed_mid_run_loses_and_doubles_nothing(ray_cluster, photos, single_machine, tmp_path):
    library = tmp_path / "lib"
    killed: list[int] = []
    seen = threading.Event()

    def progress(done: int, total: int) -> None:
        # Called on the head after each settled batch of 16: the first ones are in, the rest
        # are still being embedded by the actors; kill one of them now.
        if total and 32 <= done < total and not killed:
            for pid in _actor_pids()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            seen.set()

    folder = Library.open(library)
    try:
        model = service.load_model(None, image=False)
        cluster_model = RayModel(service.checkpoint_path(None), model.fingerprint, "auto", actors=2, head_batch=16)
        report, scanner = scan_on_ray(folder, cluster_model, [str(photos)], progress)
    finally:
        folder.close()
    assert killed, "no embedding actor was found to kill while the run was in progress"
    assert not any(pid in _actor_pids() for pid in killed)
    assert report.added == PHOTOS and report.failed == 0 and not report.interrupted
    ids = _assert_same_as_single_machine(library, single_machine)
    shard_ids = _shard_ids(scanner.shard_folder)
    assert len(shard_ids) == len(set(shard_ids)) == PHOTOS and set(shard_ids) == ids


def test_without_ray_the_command_says_what_to_install(monkeypatch, tmp_path, photos):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: `import ray` fails
    with pytest.raises(RayUnavailable, match="photosearch\\[cluster\\]"):
        import_ray()
    result = CliRunner().invoke(cli, ["--library", str(tmp_path / "lib"), "index", "--ray", "auto", str(photos)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {INSTALL_HINT}"
    assert not (tmp_path / "lib" / "library.sqlite").exists()  # nothing was touched


def test_a_cluster_that_does_not_answer_is_said_in_one_line(tmp_path, photos):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' runs these tests")
    for address, expected in [("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1"),
                              ("somewhere", "--ray takes host:port")]:
        result = CliRunner().invoke(cli, ["--library", str(tmp_path / "lib"), "index", "--ray", address, str(photos)])
        assert result.exit_code == 1, result.output
        assert expected in result.output and "Traceback" not in result.output
