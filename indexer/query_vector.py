"""From query terms (indexer.query_terms) to one query vector over an open library.

A text term goes through the text tower; a photo term is the library's stored vector when the
photo is indexed, else the file (or the uploaded bytes' vector, computed by the caller) is
decoded with bounds and embedded on the fly, and nothing is stored. Photo terms are put on the
text scale with the calibration (`relevance.Calibration.image_scale`), so the combined score
reads on the one relevance scale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from photosearch.indexer.relevance import Calibration, unknown_text
from photosearch.indexer.resources import ServiceError

MAX_QUERY_FILE_BYTES = 64 << 20  # a photo given as a query (not indexed) is at most this big
MAX_QUERY_PIXELS = 50_000_000  # ... and declares at most this many pixels (decoded reduced)


@dataclass(frozen=True)
class QueryVector:
    vector: np.ndarray  # float32 (D,): a photo's raw score is vector · photo
    offset: float  # added to raw scores before the calibration (photo terms' share)
    exclude: int | None  # the library photo asked about (`similar`), never a result
    used_model: bool  # False when every term was a stored photo vector (the model did nothing)
    raw_factor: float = 1.0  # score / raw_factor is the plain inner product (photo-only queries)


def encode_terms(terms: list[dict], lib, model_for_terms, calibration: Calibration | None,
                 vocabulary: frozenset) -> QueryVector:
    """`terms` (checked by query_terms.check) -> QueryVector. `model_for_terms()` gives the
    SearchModel (loaded on first need). ServiceError for a word-less text or unreadable photo."""
    positive = sum(term.get("weight", 1.0) for term in terms if term.get("weight", 1.0) > 0)
    texts = [term for term in terms if term.get("text")]
    for term in texts:
        why = unknown_text(term["text"], vocabulary)
        if why:
            raise ServiceError(why)
    vectors = dict(zip(range(len(texts)), model_for_terms().encode_search_texts([t["text"] for t in texts]))) if texts else {}
    total, offset, exclude, used, stored = None, 0.0, None, 0, 0
    factor, shift = calibration.image_scale() if calibration else (1.0, 0.0)
    for term in terms:
        weight = term.get("weight", 1.0) / positive
        if term.get("text"):
            vector = np.asarray(vectors[used], dtype=np.float32)
            used += 1
        else:
            vector, pid = photo_vector(term, lib, model_for_terms)
            vector, offset, stored = factor * vector, offset + weight * shift, stored + (pid is not None)
            if len(terms) == 1:
                exclude = pid
        total = weight * vector if total is None else total + weight * vector
    raw_factor = 1.0 if texts else factor  # photos only: undo their scaling for the raw score
    return QueryVector(np.ascontiguousarray(total, dtype=np.float32), offset, exclude, stored < len(terms), raw_factor)


def photo_vector(term: dict, lib, model_for_terms) -> tuple[np.ndarray, int | None]:
    """(the photo term's vector float32 (D,), its library id or None)."""
    if term.get("vector") is not None:  # embedded by the caller (an upload to the web page)
        return np.asarray(term["vector"], dtype=np.float32), None
    if term.get("photo") is not None:
        record = lib.get(int(term["photo"]))
        vector = None if record is None else lib.get_vector(record.id)
        if vector is None or record.status != "indexed":
            raise ServiceError(f"no indexed photo {term['photo']} in the library")
        return vector, record.id
    path = str(term["image"])
    record = lib.get_by_path(path) or lib.get_by_path(os.path.realpath(path))
    if record is not None and record.status == "indexed":
        vector = lib.get_vector(record.id)
        if vector is not None:
            return vector, record.id
    return embed_file(path, model_for_terms()), None


def embed_file(path: str, model) -> np.ndarray:
    """A photo file outside the library, decoded with bounds and embedded: float32 (D,)."""
    from photosearch.indexer.images import PhotoDecodeError, load_photo

    if not os.path.lexists(path):
        raise ServiceError(f"{path}: no such file (and no photo of the library)")
    if os.path.isdir(path):
        raise ServiceError(f"{path} is a folder: give one photo")
    try:
        size = os.path.getsize(path)
        if size > MAX_QUERY_FILE_BYTES:
            raise ServiceError(f"{path} is {size / 1e6:.0f} MB: a photo given as a query may be at most "
                               f"{MAX_QUERY_FILE_BYTES >> 20} MB")
        photo = load_photo(path, max_pixels=MAX_QUERY_PIXELS)
    except PhotoDecodeError as exc:
        raise ServiceError(f"{path} cannot be read as a photo: {exc.reason}") from None
    except OSError as exc:
        raise ServiceError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return embed_image(photo.image, model)


def embed_image(image, model) -> np.ndarray:
    """A decoded RGB PIL image -> its search vector, float32 (D,); the image is closed."""
    try:
        pixels = model.preprocess(image)[None]  # (1, S, S, 3)
    finally:
        image.close()
    return np.asarray(model.encode_search_images(pixels), dtype=np.float32)[0]
