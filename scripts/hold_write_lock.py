"""Another program holds the library database's write lock past SQLite's busy timeout (30 s)
in the middle of a scan: `photosearch index` and the daemon must wait it out, say so in one
line, and finish with every photo stored (tests/reliability does the same with a 0.3 s
timeout; this is the real length).

    python scripts/hold_write_lock.py                    # index, lock held 45 s
    python scripts/hold_write_lock.py --command watch    # the daemon; status is asked meanwhile

Photos: the bundled demo photos copied N times over (--copies, re-encoded so none is a byte
copy of another), indexed with the shipped model. Exit 1 if anything was lost or failed.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PHOTOSEARCH = [sys.executable, "-c", "from photosearch.cli.main import cli; cli()"]


def make_photos(folder: Path, copies: int) -> int:
    sources = sorted((REPO / "examples" / "photos" / "images").glob("*.jpg"))
    for n in range(copies):
        for source in sources:
            with Image.open(source) as image:
                image.convert("RGB").resize((160 + n, 120)).save(folder / f"{n:02d}-{source.name}", quality=90)
    return copies * len(sources)


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM photos").fetchone()[0]
    except sqlite3.Error:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45.0, help="how long the lock is held")
    parser.add_argument("--command", choices=("index", "watch"), default="index")
    parser.add_argument("--copies", type=int, default=10, help="times the 51 demo photos are copied")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos, library = Path(tmp) / "photos", Path(tmp) / "lib"
        photos.mkdir()
        total = make_photos(photos, args.copies)
        started = time.monotonic()
        run = subprocess.Popen([*PHOTOSEARCH, "--library", str(library), args.command, str(photos)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db = library / "library.sqlite"
        while stored(db) == 0:  # the first batch is in: the scan is under way
            if run.poll() is not None:
                print(run.stderr.read())
                return 1
            time.sleep(0.02)
        lock = sqlite3.connect(str(db), isolation_level=None, timeout=60)
        lock.execute("BEGIN IMMEDIATE")
        print(f"lock taken with {stored(db)} of {total} photos stored; holding it {args.seconds:g} s")
        time.sleep(args.seconds * 0.8)
        if args.command == "watch":
            status = subprocess.run([*PHOTOSEARCH, "--library", str(library), "status"], capture_output=True, text=True)
            print("status meanwhile:\n  " + "\n  ".join(status.stdout.splitlines()[1:4] + status.stdout.splitlines()[-1:]))
        time.sleep(args.seconds * 0.2)
        lock.execute("ROLLBACK")
        lock.close()
        print(f"lock released after {time.monotonic() - started:.1f} s")
        if args.command == "watch":
            while stored(db) < total and time.monotonic() - started < args.seconds + 600:
                time.sleep(0.5)
            time.sleep(1.0)
            run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=args.seconds + 600)
        print(f"`photosearch {args.command}` exit code {run.returncode} after {time.monotonic() - started:.1f} s")
        lines = [line for line in err.splitlines() if not line.startswith("scanning:")]
        print("stderr:\n  " + "\n  ".join(lines) + ("\nstdout:\n  " + out.strip() if out.strip() else ""))
        with sqlite3.connect(str(db)) as conn:
            counts = dict(conn.execute("SELECT status, count(*) FROM photos GROUP BY status").fetchall())
        print(f"library: {counts} of {total} photos")
        return 0 if run.returncode == 0 and counts == {"indexed": total} else 1


if __name__ == "__main__":
    sys.exit(main())
