"""`photosearch demo`: index the bundled demo photos, answer queries, save a result grid per query.

The demo library is its own folder, `$XDG_DATA_HOME/photosearch-demo` (else
`~/.local/share/photosearch-demo`), next to the default library and never mixed into it;
`--library` picks another. Indexing is incremental (indexer.scanner): a second run embeds
nothing. The bundled photos are `examples/photos/images` (MS-COCO photos under CC BY /
CC BY-SA, see examples/photos/LICENSE.md), package data of the installed `photosearch.examples`.
The result grids are drawn with Pillow (matplotlib is only in the `train` extra).

Queries go through `indexer.web.LibraryBackend`, like the web page's: the library's daemon
answers when it runs, else a model loaded once in this process.
"""

from __future__ import annotations

import io
import os
import re
import shlex
from pathlib import Path

from photosearch.indexer import resources, service
from photosearch.indexer.images import PhotoDecodeError
from photosearch.indexer.lock import LockHeld
from photosearch.indexer.web import HttpError, LibraryBackend

# The package's own folder: the repository root in a checkout, site-packages/photosearch installed.
BUNDLED_PHOTOS = Path(__file__).resolve().parent.parent / "examples" / "photos" / "images"
DEMO_LIBRARY_NAME = "photosearch-demo"
BATCH_QUERIES = ("a red stop sign", "a laptop on a desk", "pizza on a plate", "a cat",
                 "a bus on the street", "a white chair")
GRID_COLUMNS = 5
CELL = 200  # a result grid's thumbnail box, in pixels
PAD = 12  # margins around the grid and between cells, in pixels
LINE_GAP = 4  # between lines of text, in pixels


def demo_library_dir() -> Path:
    """`<data dir>/photosearch-demo`: beside the default library (whatever $PHOTOSEARCH_LIBRARY says)."""
    from photosearch.storage.library_dir import LIBRARY_ENV, default_library_dir

    env = {key: value for key, value in os.environ.items() if key != LIBRARY_ENV}
    return default_library_dir(env).parent / DEMO_LIBRARY_NAME


class Demo:
    """The demo's library, kept indexed, and queries over it that also save a result grid."""

    def __init__(self, library_dir=None, photos_dir=None, checkpoint=None, results_dir="results",
                 log: resources.Log = resources.quiet):
        self.library = resources.library_folder(library_dir or demo_library_dir())
        self.photos = Path(photos_dir or BUNDLED_PHOTOS).expanduser().absolute()
        self.checkpoint = checkpoint
        self.results = Path(results_dir)
        self.log = log
        self.backend: LibraryBackend | None = None

    def prepare(self, progress: resources.Progress | None = None) -> dict | None:
        """Index the demo photos (new and changed ones only) and load what queries need.

        Returns the index report, or None when a daemon (`photosearch watch`) keeps the
        library indexed itself.
        """
        if not self.photos.is_dir():
            raise resources.ServiceError(f"the demo photos are not in {self.photos}: pass --photos DIR, "
                                       "a folder of photos to index for the demo")
        try:
            if self._indexed_with_another_model():  # e.g. by an older photosearch: the demo's own library
                self.log("the demo library was indexed with another model: embedding its photos again")
                service.reindex(str(self.library), self.checkpoint, progress, self.log)
            report = service.index([str(self.photos)], str(self.library), self.checkpoint, progress, self.log)
        except LockHeld as exc:
            self.log(f"not indexing: {exc}; querying the library as it is")
            report = None
        self.backend = LibraryBackend(self.library, self.checkpoint, self.log)
        self.backend.warm_up()
        return report

    def _indexed_with_another_model(self) -> bool:
        if not (self.library / resources.DB_NAME).exists():
            return False
        from photosearch.storage import Library

        wanted = resources.model_fingerprint(resources.checkpoint_path(self.checkpoint))
        with Library.open(self.library) as lib:  # not read-only: an older schema is upgraded here
            return resources.model_mismatch(lib, wanted) is not None

    def ask(self, text: str, k: int = 5) -> dict:
        """service.query's answer (results with photo ids), plus "grid": the saved image's path."""
        if self.backend is None:
            self.prepare()
        request = {"op": "query", "text": " ".join(text.split()), "k": k, "under": None}
        if not request["text"]:
            raise resources.ServiceError('the query is empty: say what to look for, e.g. "white chair"')
        answer = self.backend.with_ids(self.backend.answer(request))
        grid = self.results / f"demo-{_slug(request['text'])}.png"
        save_grid(request["text"], [(hit, self._thumbnail(hit)) for hit in answer["results"]], grid)
        return {**answer, "grid": str(grid)}

    def serve_hint(self) -> str:
        return (f"see the library in your browser: photosearch --library {shlex.quote(str(self.library))} serve"
                "  (then open the link it prints)")

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
    """A PNG headed by `title` with one thumbnail per (hit, image) cell, its rank, score and name.

    Thumbnails keep their aspect ratio inside a square box; a cell whose image is None is a
    grey box. Names too long for a cell are shortened with "..."; the title wraps.
    """
    from PIL import Image, ImageDraw, ImageOps

    font, small = _font(15), _font(12)
    columns = max(1, min(GRID_COLUMNS, len(cells)))
    rows = max(1, -(-len(cells) // columns))
    cell_w, label_h = CELL + 2 * PAD, 2 * LINE_GAP + 30 + PAD
    width = columns * cell_w + PAD
    title_lines = _wrap(f"query: {title}", font, width - 2 * PAD)
    top = PAD + len(title_lines) * (15 + LINE_GAP) + PAD
    height = top + (rows * (CELL + label_h) if cells else 20) + PAD
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(title_lines):
        draw.text((PAD, PAD + i * (15 + LINE_GAP)), line, fill="black", font=font)
    if not cells:
        draw.text((PAD, top), "no photos found", fill="dimgray", font=font)
    for i, (hit, image) in enumerate(cells):
        x, y = PAD + (i % columns) * cell_w, top + (i // columns) * (CELL + label_h)
        if image is None:
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill="lightgray")
        else:
            thumb = ImageOps.contain(image, (CELL, CELL))  # aspect ratio kept
            canvas.paste(thumb, (x + (CELL - thumb.width) // 2, y + (CELL - thumb.height) // 2))
        labels = (f"{hit['rank']}. score {hit['score']:.3f}", _fit(hit["name"], small, CELL))
        for j, (text, face) in enumerate(zip(labels, (font, small))):
            draw.text((x, y + CELL + LINE_GAP + j * 17), _drawable(text, face), fill="black", font=face)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _font(size: int):
    """Pillow's default font at `size` (a scalable one where Pillow has FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1, or no FreeType: the small bitmap font
        return ImageFont.load_default()


def _drawable(text: str, font) -> str:
    """The bitmap fallback font only draws Latin-1; FreeType fonts draw what they have glyphs for."""
    from PIL import ImageFont

    if isinstance(font, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def _fit(text: str, font, width: int) -> str:
    """`text`, shortened with "..." until it fits in `width` pixels."""
    text = _drawable(text, font)
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _wrap(text: str, font, width: int) -> list[str]:
    """`text` as lines of whole words that fit in `width` pixels (a word too long is shortened)."""
    lines: list[str] = []
    for word in _drawable(text, font).split() or [""]:
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(_fit(word, font, width))
    return lines


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "query"
