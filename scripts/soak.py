"""Soak test: a real `photosearch watch` daemon on a temporary library while a driver
creates, edits, moves and deletes photos at random, drops bad files in, and kills and
restarts the daemon (SIGKILL and SIGTERM). At the end the library must match the disk: no
photo lost, none duplicated, FAISS equal to SQLite, every bad file recorded as failed.

    python scripts/soak.py --minutes 5          # prints a summary; exit 1 if inconsistent
    python scripts/soak.py --minutes 1 --seed 3 --keep /tmp/soak   # keep the folders

Without --checkpoint a tiny untrained model is built (the tests' one): the soak is about
the indexer, not about search quality.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MAX_PHOTOS = 250  # above this the driver prefers deleting: the daemon must keep up on 2 CPUs
BAD_PREFIX = "bad-"  # bad files are never moved or edited, so their names say what they are


def build_tiny_checkpoint(path: Path) -> Path:
    import torch

    from photosearch.miniclip.checkpoint import save_checkpoint
    from photosearch.miniclip.config import PRESETS, with_overrides
    from photosearch.miniclip.export import export_model
    from photosearch.miniclip.model import MiniCLIP
    from photosearch.miniclip.tokenizer import WordTokenizer

    torch.manual_seed(0)
    config = with_overrides(PRESETS["tiny"], text_encoder="lstm")
    model = MiniCLIP(config, WordTokenizer.build(["a photo of a red circle"], max_len=8))
    save_checkpoint(model.eval(), path)
    export_model(model, path)
    return path


class Daemon:
    """`photosearch watch ROOT` as a subprocess that can be killed and started again."""

    def __init__(self, library: Path, root: Path, checkpoint: Path, log: Path):
        self.library, self.root, self.checkpoint, self.log = library, root, checkpoint, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-c", "from photosearch.cli.main import cli; cli()", "--library", str(self.library),
                   "watch", str(self.root), "--checkpoint", str(self.checkpoint), "--settle", "0.3", "--poll", "0.5"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int) -> int | None:
        if not self.alive():
            return None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


class Driver:
    """Random changes to the photo folder, counted by kind."""

    def __init__(self, root: Path, rng: random.Random):
        self.root, self.rng, self.done = root, rng, Counter()
        self.serial = 0

    def photos(self, bad: bool | None = False) -> list[Path]:
        found = [Path(d) / n for d, _, names in os.walk(self.root) for n in names if not n.startswith(".")]
        if bad is None:
            return found
        return [p for p in found if p.name.startswith(BAD_PREFIX) == bad]

    def folders(self) -> list[Path]:
        return [self.root] + [Path(d) / n for d, names, _ in os.walk(self.root) for n in names]

    def step(self) -> None:
        many = len(self.photos(bad=None)) > MAX_PHOTOS
        actions = [(self.create, 2 if not many else 0), (self.edit, 2), (self.move, 2), (self.delete, 6 if many else 2),
                   (self.write_slowly, 0.5), (self.drop_bad_file, 0.5), (self.drop_folder, 0.3 if not many else 0),
                   (self.delete_folder, 0.2), (self.churn_one_name, 0.3)]
        action = self.rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
        action()

    def _image_bytes(self) -> tuple[bytes, str]:
        import io

        import numpy as np
        from PIL import Image

        size = (self.rng.randint(8, 96), self.rng.randint(8, 96))
        pixels = np.random.default_rng(self.rng.getrandbits(32)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        fmt = self.rng.choice(["JPEG", "PNG"])
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format=fmt)
        return out.getvalue(), ".jpg" if fmt == "JPEG" else ".png"

    def _new_path(self, suffix: str, prefix: str = "p") -> Path:
        self.serial += 1
        return self.rng.choice(self.folders()) / f"{prefix}{self.serial:05d}{suffix}"

    def create(self) -> None:
        data, suffix = self._image_bytes()
        self._new_path(suffix).write_bytes(data)
        self.done["created"] += 1

    def edit(self) -> None:
        photos = self.photos()
        if photos:
            target = self.rng.choice(photos)
            data, _ = self._image_bytes()
            target.write_bytes(data)
            self.done["edited"] += 1

    def move(self) -> None:
        photos = self.photos()
        if photos:
            source = self.rng.choice(photos)
            os.replace(source, self._new_path(source.suffix))
            self.done["moved"] += 1

    def delete(self) -> None:
        photos = self.photos(bad=None)
        if photos:
            self.rng.choice(photos).unlink()
            self.done["deleted"] += 1

    def write_slowly(self) -> None:
        data, suffix = self._image_bytes()
        path, parts = self._new_path(suffix), 6
        with open(path, "wb") as fh:
            for i in range(parts):
                fh.write(data[i * len(data) // parts:(i + 1) * len(data) // parts])
                fh.flush()
                time.sleep(0.08)
        self.done["written slowly"] += 1

    def drop_bad_file(self) -> None:
        data, _ = self._image_bytes()
        kind, content = self.rng.choice([("empty", b""), ("truncated", data[: len(data) // 3]),
                                         ("text", b"not a photo\n" * 40)])
        self._new_path(".jpg", prefix=f"{BAD_PREFIX}{kind}-").write_bytes(content)
        self.done["bad files"] += 1

    def drop_folder(self) -> None:
        staging = Path(tempfile.mkdtemp(dir=self.root.parent))
        for _ in range(self.rng.randint(3, 20)):
            data, suffix = self._image_bytes()
            self.serial += 1
            (staging / f"f{self.serial:05d}{suffix}").write_bytes(data)
        self.serial += 1
        os.rename(staging, self.rng.choice(self.folders()) / f"album{self.serial:05d}")
        self.done["folders dropped"] += 1

    def delete_folder(self) -> None:
        folders = self.folders()[1:]
        if folders:
            shutil.rmtree(self.rng.choice(folders))
            self.done["folders deleted"] += 1

    def churn_one_name(self) -> None:
        path = self._new_path(".png", prefix="churn")
        for _ in range(self.rng.randint(3, 15)):
            data, _ = self._image_bytes()
            path.write_bytes(data)
            if self.rng.random() < 0.7:
                path.unlink()
        self.done["create/delete bursts"] += 1


def settle(library: Path, timeout: float):
    """Audit the library (read-only) until it matches the disk or `timeout` runs out."""
    from photosearch.indexer.audit import audit
    from photosearch.storage import Library

    deadline = time.monotonic() + timeout
    while True:
        try:
            with Library.open(library, read_only=True) as lib:
                result = audit(lib)
        except Exception as exc:  # noqa: BLE001 - mid-write snapshot problems: try again
            result = exc
        if not isinstance(result, Exception) and result.consistent or time.monotonic() > deadline:
            return result
        time.sleep(1.0)


def bad_files_recorded(library: Path, driver: Driver) -> list[str]:
    """Problems: a bad file that is not `failed` with a reason, or a good one that is not indexed."""
    from photosearch.storage import Library

    problems = []
    with Library.open(library, read_only=True) as lib:
        for path in driver.photos(bad=None):
            record = lib.get_by_path(str(path))
            bad = path.name.startswith(BAD_PREFIX)
            if record is None:
                problems.append(f"{path}: not in the library")
            elif bad and (record.status != "failed" or not record.error):
                problems.append(f"{path}: a bad file is {record.status}")
            elif not bad and record.status != "indexed":
                problems.append(f"{path}: {record.status} ({record.error})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the driver runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=None, help="model (default: a tiny untrained one)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--kill-every", type=float, default=20.0, help="mean seconds between daemon kills")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="photosearch-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    root, library, log = work / "photos", work / "lib", work / "daemon.log"
    root.mkdir(exist_ok=True)
    checkpoint = args.checkpoint or build_tiny_checkpoint(work / "tiny.safetensors")
    rng = random.Random(args.seed)
    driver, daemon, faults = Driver(root, rng), Daemon(library, root, checkpoint, log), Counter()
    for _ in range(30):
        driver.create()
    daemon.start()
    started = time.monotonic()
    end, next_kill = started + args.minutes * 60, started + rng.expovariate(1 / args.kill_every)
    try:
        while time.monotonic() < end:
            driver.step()
            time.sleep(rng.uniform(0, 0.15))
            if not daemon.alive():
                if daemon.proc.returncode not in (0, -signal.SIGKILL):
                    faults["daemon died on its own"] += 1
                daemon.start()
                faults["restarts"] += 1
            elif time.monotonic() >= next_kill:
                next_kill = time.monotonic() + rng.expovariate(1 / args.kill_every)
                sig = rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGTERM])
                code = daemon.stop(sig)
                faults["SIGKILL" if sig == signal.SIGKILL else "SIGTERM"] += 1
                if sig == signal.SIGTERM and code != 0:
                    faults["unclean SIGTERM exits"] += 1
        if not daemon.alive():
            daemon.start()
            faults["restarts"] += 1
        result = settle(library, timeout=120)
        bad = bad_files_recorded(library, driver) if not isinstance(result, Exception) else []
        clean = daemon.stop(signal.SIGTERM)
    finally:
        if daemon.alive():
            daemon.stop(signal.SIGKILL)

    from photosearch.storage import Library

    with Library.open(library) as lib:
        repair = lib.stats()["index_repair"]
    tracebacks = log.read_text(errors="replace").count("Traceback") if log.exists() else 0
    ok = (not isinstance(result, Exception) and result.consistent and not bad and clean == 0
          and repair is None and not faults["daemon died on its own"] and not tracebacks)
    print(f"soak: {(time.monotonic() - started) / 60:.1f} min, seed {args.seed}, work folder {work}")
    print("changes made:   " + ", ".join(f"{n} {k}" for k, n in sorted(driver.done.items())))
    print("faults injected: " + ", ".join(f"{n} {k}" for k, n in sorted(faults.items())))
    if isinstance(result, Exception):
        print(f"final audit: could not read the library: {result}")
    else:
        print(f"final audit: {result.on_disk} photo files on disk, {result.in_library} in the library; "
              f"lost {len(result.lost)}, duplicated {len(result.duplicated)}, stale {len(result.stale)}, "
              f"pending {len(result.pending)}, FAISS != SQLite: {result.index_mismatch or 'no'}")
        if not result.consistent:
            print("  " + result.describe())
    print(f"bad files recorded as failed, good ones indexed: {'yes' if not bad else bad[:5]}")
    print(f"clean stop: exit {clean}, index saved cleanly: {repair is None}, tracebacks in the log: {tracebacks}")
    print("RESULT: " + ("consistent" if ok else "PROBLEMS FOUND"))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
