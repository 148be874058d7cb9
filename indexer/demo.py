"""`photosearch demo`: index the bundled demo photos, answer queries, save a result grid per query.

The demo library is its own folder, `$XDG_DATA_HOME/photosearch-demo` (else
`~/.local/share/photosearch-demo`), next to the default library and never mixed into it;
`--library` picks another. Indexing is incremental (indexer.scanner): a second run embeds
nothing. The bundled photos are `examples/photos/images` (MS-COCO photos under CC BY /
CC BY-SA, see examples/photos/LICENSE.md).

Queries go through `indexer.web.LibraryBackend`, like the web page's: the library's daemon
answers when it runs, else a model loaded once in this process.
"""

from __future__ import annotations

import io
import os
import re
import shlex
from pathlib import Path

from photosearch.indexer import service
from photosearch.indexer.images import PhotoDecodeError
from photosearch.indexer.lock import LockHeld
from photosearch.indexer.web import DEFAULT_PORT, HttpError, LibraryBackend

BUNDLED_PHOTOS = service.REPO_ROOT / "examples" / "photos" / "images"
DEMO_LIBRARY_NAME = "photosearch-demo"
BATCH_QUERIES = ("a red stop sign", "a laptop on a desk", "pizza on a plate", "a cat",
                 "a bus on the street", "a white chair")
GRID_COLUMNS = 5


def demo_library_dir() -> Path:
    """`<data dir>/photosearch-demo`: beside the default library (whatever $PHOTOSEARCH_LIBRARY says)."""
    from photosearch.storage.library_dir import LIBRARY_ENV, default_library_dir

    env = {key: value for key, value in os.environ.items() if key != LIBRARY_ENV}
    return default_library_dir(env).parent / DEMO_LIBRARY_NAME


class Demo:
    """The demo's library, kept indexed, and queries over it that also save a result grid."""

    def __init__(self, library_dir=None, photos_dir=None, checkpoint=None, results_dir="results",
                 log: service.Log = service.quiet):
        self.library = service.library_folder(library_dir or demo_library_dir())
        self.photos = Path(photos_dir or BUNDLED_PHOTOS).expanduser().absolute()
        self.checkpoint = checkpoint
        self.results = Path(results_dir)
        self.log = log
        self.backend: LibraryBackend | None = None

    def prepare(self, progress: service.Progress | None = None) -> dict | None:
        """Index the demo photos (new and changed ones only) and load what queries need.

        Returns the index report, or None when a daemon (`photosearch watch`) keeps the
        library indexed itself.
        """
        if not self.photos.is_dir():
            raise service.ServiceError(f"the demo photos are not in {self.photos}: pass --photos DIR, "
                                       "a folder of photos to index for the demo")
        try:
            report = service.index([str(self.photos)], str(self.library), self.checkpoint, progress)
        except LockHeld as exc:
            self.log(f"not indexing: {exc}; querying the library as it is")
            report = None
        self.backend = LibraryBackend(self.library, self.checkpoint, self.log)
        self.backend.warm_up()
        return report

    def ask(self, text: str, k: int = 5) -> dict:
        """service.query's answer (results with photo ids), plus "grid": the saved image's path."""
        if self.backend is None:
            self.prepare()
        request = {"op": "query", "text": " ".join(text.split()), "k": k, "under": None}
        if not request["text"]:
            raise service.ServiceError('the query is empty: say what to look for, e.g. "white chair"')
        answer = self.backend.with_ids(self.backend.answer(request))
        grid = self.results / f"demo-{_slug(request['text'])}.png"
        save_grid(request["text"], [(hit, self._thumbnail(hit)) for hit in answer["results"]], grid)
        return {**answer, "grid": str(grid)}

    def serve_hint(self) -> str:
        return (f"see the library in your browser: photosearch --library {shlex.quote(str(self.library))} serve"
                f"  (then open http://127.0.0.1:{DEFAULT_PORT}/)")

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _thumbnail(self, hit: dict):
        """The photo's cached thumbnail (shared with the web page's), None if unreadable."""
        from PIL import Image

        try:
            record, real = self.backend.photo(hit["id"])
            data = self.backend.thumbnails.jpeg(record.id, record.fingerprint, real)
        except (HttpError, PhotoDecodeError, OSError) as exc:  # an empty cell, not a failed demo
            self.log(f"cannot show {hit['path']}: {exc}")
            return None
        return Image.open(io.BytesIO(data)).convert("RGB")


def save_grid(title: str, cells: list, path: Path) -> Path:
    """A figure titled `title` with one thumbnail per (hit, image) cell, its rank and score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(1, min(GRID_COLUMNS, len(cells)))
    rows = max(1, -(-len(cells) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (hit, image) in zip(axes.flat, cells):
        if image is not None:
            ax.imshow(image)
        ax.set_title(f"{hit['rank']}. score {hit['score']:.3f}", fontsize=9)
        ax.text(0.5, -0.04, _short(hit["name"]), transform=ax.transAxes, ha="center", va="top", fontsize=7)
    if not cells:
        axes[0, 0].text(0.5, 0.5, "no photos found", ha="center", va="center")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "query"


def _short(name: str, limit: int = 30) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
