"""Small JPEG previews of library photos, made once and kept in the library's `thumbnails/`.

A thumbnail is named `<photo id>-<content fingerprint>.jpg`, so an edited photo (new
fingerprint) gets a new one and the stale file is removed then. Photos are decoded with
`indexer.images.load_photo` (EXIF orientation applied, any mode made RGB, decompression-bomb
guard), then shrunk to fit `SIZE` x `SIZE`. Files are written atomically (temporary name,
then rename), so two requests for the same new thumbnail race harmlessly.

Where the folder cannot be written (a read-only library), the thumbnail is still made, in
memory, every time it is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
from pathlib import Path

from photosearch.indexer.images import load_photo

FOLDER_NAME = "thumbnails"
SIZE = 256  # longest side, in pixels
QUALITY = 85  # JPEG quality
_SAFE_FINGERPRINT = re.compile(r"^[0-9a-f-]{1,80}$")


class Thumbnails:
    """The thumbnail cache of one library folder."""

    def __init__(self, library_folder: str | os.PathLike, size: int = SIZE):
        self.folder = Path(library_folder) / FOLDER_NAME
        self.size = size
        self.made = 0  # thumbnails rendered by this object (the cache's misses)

    def path_for(self, photo_id: int, fingerprint: str) -> Path:
        return self.folder / f"{int(photo_id)}-{_file_key(fingerprint)}.jpg"

    def jpeg(self, photo_id: int, fingerprint: str, source: str | os.PathLike) -> bytes:
        """The thumbnail's JPEG bytes: from the cache, else rendered from `source` and cached.

        Raises indexer.images.PhotoDecodeError when `source` cannot be decoded.
        """
        cached = self.path_for(photo_id, fingerprint)
        with contextlib.suppress(OSError):
            return cached.read_bytes()
        data = self.render(source)
        self.made += 1
        with contextlib.suppress(OSError):  # not writable: serve it uncached
            self._store(cached, data)
            self._drop_stale(photo_id, keep=cached)
        return data

    def render(self, source: str | os.PathLike) -> bytes:
        return jpeg_preview(source, self.size)

    def _store(self, path: Path, data: bytes) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, like the library around it
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".jpg", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _drop_stale(self, photo_id: int, keep: Path) -> None:
        """Thumbnails of earlier versions of the same photo."""
        for old in self.folder.glob(f"{int(photo_id)}-*.jpg"):
            if old != keep:
                with contextlib.suppress(OSError):
                    old.unlink()


def jpeg_preview(source: str | os.PathLike, size: int) -> bytes:
    """`source` as an upright JPEG whose longest side is at most `size` (PhotoDecodeError if bad)."""
    image = load_photo(source, target=max(1, size // 2)).image  # short side >= size, upright RGB
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()


def _file_key(fingerprint: str) -> str:
    """The fingerprint itself when it is file-name safe (the indexer's always are), else its hash."""
    text = str(fingerprint)
    if _SAFE_FINGERPRINT.match(text):
        return text
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()
