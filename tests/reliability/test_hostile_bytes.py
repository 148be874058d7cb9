"""Hostile bytes never crash anything: every size read from a file is bounded before anything
is allocated (a checkpoint's config and vocabulary, a safetensors header, the export manifest,
the FAISS file), and query text that is not UTF-8 is refused in one line the same way on the
command line, through the daemon and in the web API."""

from __future__ import annotations

import json
import os
import resource
import shutil
import struct
import subprocess
from pathlib import Path

import faiss
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from photosearch.indexer import ipc
from photosearch.indexer.backend import LibraryBackend
from photosearch.storage import Library
from photosearch.storage.index_file import INDEX_NAME, SIDECAR_NAME, _without_direct_map, file_facts, write_index
from photosearch.storage.index_layout import LayoutError, check_layout
from tests.daemon.conftest import daemon_factory, draw, photosearch_command, run_cli, subprocess_env  # noqa: F401
from tests.reliability.test_model_input import dataset, one_clear_line  # noqa: F401 - a fixture
from tests.web.conftest import serving

EXPORT_SUFFIXES = (".image.onnx", ".text.onnx", ".export.json")


def forge(source: Path, path: Path, config=None, tokenizer=None) -> Path:
    """`source` with its config and/or tokenizer fields replaced, the fingerprint kept, and its
    export copied beside it: to every reader it is the same model with other sizes written in."""
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata())
    if config:
        meta["config"] = json.dumps({**json.loads(meta["config"]), **config}, sort_keys=True)
    if tokenizer:
        meta["tokenizer"] = json.dumps({**json.loads(meta["tokenizer"]), **tokenizer})
    save_file(load_file(str(source)), str(path), metadata=meta)
    for suffix in EXPORT_SUFFIXES:
        shutil.copyfile(str(source).removesuffix(".safetensors") + suffix, str(path).removesuffix(".safetensors") + suffix)
    return path


ENORMOUS_CONFIGS = {
    "embedding width 10^15": {"embed_dim": 10**15},
    "hidden width 2^40": {"head_hidden": 2**40},
    "vocabulary size 10^12": {"vocab_size": 10**12},
    "input side 10^6": {"image_size": 10**6},
    "a text where a size belongs": {"embed_dim": "32"},
    "negative layers": {"lstm_layers": -1},
}
ENORMOUS_VOCABULARIES = {
    "300,000 words": {"words": [f"w{i}" for i in range(300_000)]},
    "max_len 10^12": {"max_len": 10**12},
    "words that are not a list": {"words": {"a": 1}},
}


def command_args(command, checkpoint, data, library):
    return {
        "evaluate": ["evaluate", "--checkpoint", checkpoint, "--captions-json", data["captions"],
                     "--image-root", data["images"], "--cache-dir", data["root"] / "cache"],
        "export": ["export", "--checkpoint", checkpoint],
        "index": ["--library", library, "index", data["images"], "--checkpoint", checkpoint],
        "query": ["--library", library, "query", "red", "--checkpoint", checkpoint],
    }[command]


@pytest.mark.parametrize("command", ["evaluate", "export"])
@pytest.mark.parametrize("kind", list(ENORMOUS_CONFIGS))
def test_a_checkpoint_config_with_enormous_sizes_is_one_clear_error(tmp_path, tiny_checkpoint, dataset, kind, command):  # noqa: F811
    checkpoint = forge(tiny_checkpoint, tmp_path / "model.safetensors", config=ENORMOUS_CONFIGS[kind])
    result = run_cli(*command_args(command, checkpoint, dataset, tmp_path / "lib"))
    one_clear_line(result, str(checkpoint), "model config")


@pytest.mark.parametrize("command", ["evaluate", "export", "query"])
@pytest.mark.parametrize("kind", list(ENORMOUS_VOCABULARIES))
def test_a_checkpoint_vocabulary_with_enormous_sizes_is_one_clear_error(tmp_path, tiny_checkpoint, dataset, kind, command):  # noqa: F811
    checkpoint = forge(tiny_checkpoint, tmp_path / "model.safetensors", tokenizer=ENORMOUS_VOCABULARIES[kind])
    if command == "query":  # photos are embedded without the vocabulary; a query needs it
        assert run_cli(*command_args("index", checkpoint, dataset, tmp_path / "lib")).exit_code == 0
    result = run_cli(*command_args(command, checkpoint, dataset, tmp_path / "lib"))
    one_clear_line(result, str(checkpoint))


@pytest.mark.parametrize("command", ["evaluate", "index"])
def test_a_safetensors_header_longer_than_the_file_is_one_clear_error(tmp_path, dataset, command):  # noqa: F811
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(struct.pack("<Q", 2**60) + b'{"__metadata__": {}}')
    one_clear_line(run_cli(*command_args(command, checkpoint, dataset, tmp_path / "lib")), str(checkpoint))


def test_an_export_manifest_of_megabytes_is_refused_unread(tmp_path, tiny_checkpoint, dataset):  # noqa: F811
    checkpoint = forge(tiny_checkpoint, tmp_path / "model.safetensors")
    manifest = tmp_path / "model.export.json"
    manifest.write_text(manifest.read_text() + " " * (2 << 20))  # still valid JSON
    result = run_cli(*command_args("index", checkpoint, dataset, tmp_path / "lib"))
    one_clear_line(result, "corrupt", "photosearch export")


# -- the FAISS file ----------------------------------------------------------------------------
def real_index(kind: str, path: Path, count: int = 7, dim: int = 16) -> Path:
    inner = faiss.IndexFlatIP(dim) if kind == "flat" else faiss.IndexHNSWFlat(dim, 8, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexIDMap2(inner)
    index.add_with_ids(np.random.default_rng(0).random((count, dim), dtype=np.float32), np.arange(count, dtype=np.int64))
    faiss.write_index(index, str(path))
    return path


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_the_layout_check_accepts_what_faiss_writes(tmp_path, kind):
    assert check_layout(real_index(kind, tmp_path / "v.faiss")) == (16, 7)
    assert check_layout(real_index(kind, tmp_path / "empty.faiss", count=0)) == (16, 0)


def patched(data: bytes, offset: int, value: int, fmt: str = "<Q") -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt):]


HEADER = 4 + 33  # fourcc, then d, ntotal, two unused, is_trained, metric
FORGERIES = {  # what a forged flat index claims; 1 GiB: under this machine's memory, so FAISS would allocate it
    "stored vectors of 1 GiB": lambda b: patched(b, 2 * HEADER, (1 << 30) // 4),
    "an id map of 1 GiB": lambda b: patched(b, len(b) - 8 - 7 * 8, (1 << 30) // 8),
    "2^31 vectors": lambda b: patched(b, 8, 2**31, "<q"),
    "dimension 10^9": lambda b: patched(b, 4, 10**9, "<i"),
    "trailing bytes": lambda b: b + b"\0" * 64,
    "cut short": lambda b: b[:-5],
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_faiss_file_whose_sizes_do_not_fit_is_refused_before_faiss_reads_it(tmp_path, forgery):
    path = tmp_path / "v.faiss"
    path.write_bytes(FORGERIES[forgery](real_index("flat", path).read_bytes()))
    with pytest.raises(LayoutError):
        check_layout(path)


@pytest.mark.parametrize("read_only", [True, False])
def test_a_library_with_a_forged_faiss_file_rebuilds_it_without_allocating_it(tmp_path, tiny_checkpoint, read_only, ledger):
    root, folder = tmp_path / "photos", tmp_path / "lib"
    for i, colour in enumerate(("red", "blue", "green")):
        draw(root / f"{colour}.png", colour, "circle", variant=i)
    assert run_cli("--library", folder, "index", root, "--checkpoint", tiny_checkpoint).exit_code == 0
    index_path, sidecar_path = folder / INDEX_NAME, folder / SIDECAR_NAME
    data = index_path.read_bytes()
    index_path.write_bytes(patched(data, 2 * HEADER, (1 << 30) // 4))  # 1 GiB of vectors, claimed
    sidecar = json.loads(sidecar_path.read_text())
    sidecar.update(file_facts(index_path))  # the sidecar forged too: size, mtime and CRC all agree
    sidecar_path.write_text(json.dumps(sidecar))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with Library.open(folder, read_only=read_only) as lib:
        assert "corrupt" in lib.stats()["index_repair"] and "does not fit" in lib.stats()["index_repair"]
        assert lib.stats()["vectors"] == 3
        if not read_only:
            ledger.assert_consistent(lib, expect=3)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 256 << 10  # KiB: far from 1 GiB


# -- query text that is not UTF-8 --------------------------------------------------------------
NOT_UTF8 = "not valid UTF-8"


def query_process(library: Path, checkpoint: Path) -> subprocess.CompletedProcess:
    args = [os.fsencode(a) for a in (*photosearch_command(), "--library", library, "query", "--checkpoint", checkpoint)]
    return subprocess.run([*args, b"\xff\xfe dog"], capture_output=True, env=subprocess_env(), timeout=120)


def test_query_text_that_is_not_utf8_is_refused_the_same_way_everywhere(tmp_path, tiny_checkpoint, daemon_factory):  # noqa: F811
    root = tmp_path / "photos"
    draw(root / "red.png", "red", "circle")
    library = tmp_path / "lib"
    assert run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint).exit_code == 0
    said = []

    def refused(result: subprocess.CompletedProcess) -> None:
        lines = result.stderr.decode().strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and NOT_UTF8 in lines[0], result
        said.append(lines[0])

    refused(query_process(library, tiny_checkpoint))  # in-process
    with serving(LibraryBackend(library, tiny_checkpoint)) as client:  # the web API
        for raw in ("%FF%FE+dog", "%ED%B3%BF+dog"):  # bytes that are not UTF-8; an encoded lone surrogate
            status, _, body = client.get(f"/api/search?q={raw}")
            assert status == 400 and NOT_UTF8 in json.loads(body)["error"], body
    daemon = daemon_factory([root], library).start()
    daemon.wait_ready()
    refused(query_process(library, tiny_checkpoint))  # through the daemon
    with pytest.raises(ipc.RemoteError, match=NOT_UTF8):  # any client of the socket
        ipc.request(library, {"op": "query", "text": "\udcff\udcfe dog", "k": 3})
    assert ipc.request(library, {"op": "query", "text": "red", "k": 1})["results"]  # and it goes on
    daemon.check_alive()
    assert said[0] == said[1]


def real_ivf(path: Path, count: int, nlist: int = 8, dim: int = 16) -> Path:
    """An IndexIVFFlat written as storage writes it (no direct map in the file)."""
    rng = np.random.default_rng(1)
    train = rng.random((max(count, 4 * nlist), dim), dtype=np.float32)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(train)
    index.add_with_ids(train[:count], np.arange(count, dtype=np.int64) * 5)
    write_index(_without_direct_map(index), path)
    return path


@pytest.mark.parametrize(("count", "nlist"), [(500, 8), (3, 64), (0, 8)])  # full sizes, sparse sizes, empty
def test_the_layout_check_accepts_the_ivf_files_storage_writes(tmp_path, count, nlist):
    assert check_layout(real_ivf(tmp_path / "v.faiss", count, nlist)) == (16, count)


IVF_FORGERIES = {  # offsets per faiss/impl/index_write.cpp: fourcc, header (33), nlist, nprobe, quantizer
    "2^40 lists": lambda b: patched(b, 4 + 33, 1 << 40),
    "a quantizer of 1 GiB": lambda b: patched(b, 4 + 33 + 16 + 4 + 33, (1 << 30) // 4),
    "a list of 1 GiB": lambda b: patched(b, b.index(b"full") + 12, (1 << 30) // 72),  # list 0's size
    "trailing bytes": lambda b: b + b"\0" * 72,
    "cut short": lambda b: b[:-5],
}


@pytest.mark.parametrize("forgery", list(IVF_FORGERIES))
def test_an_ivf_file_whose_sizes_do_not_fit_is_refused_before_faiss_reads_it(tmp_path, forgery):
    path = real_ivf(tmp_path / "v.faiss", 500)
    path.write_bytes(IVF_FORGERIES[forgery](path.read_bytes()))
    with pytest.raises(LayoutError):
        check_layout(path)
