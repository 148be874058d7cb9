"""Search vectors shaped like real ones, for libraries of any size, and real text queries.

Uniform random unit vectors time a flat search fine, but they are the one input no approximate
index can navigate: in 640 dimensions every vector is nearly orthogonal to every other, so "the
10 nearest" are barely nearer than the rest (HNSW recall@10 0.11 at 1M with efSearch 512). Real
libraries are nothing like that: photos cluster by scene and subject, and queries land in those
clusters.

So the benchmark libraries are drawn around real photo embeddings: the model's search vectors
of real photos (Flickr8k train + dev when present, else the bundled example photos under many
augmented views) are the *bases*; each library vector is a base plus Gaussian noise with the
bases' own covariance, scaled by `SPREAD`, renormalised: a burst of variations of one scene, at
a mean cosine of about 0.9 to their base (reported in the table's note). Queries are the
model's search vectors of real captions (the bundled photos' captions), as `photosearch query`
makes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SPREAD = 0.5  # noise scale, in units of the bases' own spread
CHUNK = 20_000  # vectors per generated chunk
BUNDLED = Path(__file__).resolve().parent.parent / "examples" / "photos"
FLICKR8K = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "flickr8k"  # = training.FLICKR8K
BUNDLED_VIEWS = 20  # augmented views per bundled photo when Flickr8k is absent
QUICK_VIEWS = 2


class VectorSource:
    """Bases (B, D) and their noise factor; makes the same library vectors for the same seed."""

    def __init__(self, bases: np.ndarray, origin: str):
        self.bases = np.ascontiguousarray(bases, dtype=np.float32)
        self.origin = origin
        # Search vectors share one length (sqrt 2 where two unit parts are fused); so do these.
        self.norm = float(np.median(np.linalg.norm(self.bases, axis=1)))
        centred = (self.bases - self.bases.mean(0)).astype(np.float64)
        values, vectors = np.linalg.eigh(centred.T @ centred / max(len(self.bases) - 1, 1))
        # noise = z @ factor.T with z ~ N(0, I) is ~ N(0, SPREAD^2 * cov(bases))
        self._factor = (SPREAD * vectors * np.sqrt(np.clip(values, 0, None))).astype(np.float32)

    @property
    def dim(self) -> int:
        return self.bases.shape[1]

    def chunks(self, n: int, seed: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """(start, (count, D) float32 vectors of the bases' length), the same for the same seed."""
        for start in range(0, n, CHUNK):
            _, vectors = self._draw(np.random.default_rng([seed, start]), min(CHUNK, n - start))
            yield start, vectors

    def _draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(the bases picked (count,), the vectors drawn around them (count, D))."""
        picks = rng.integers(0, len(self.bases), count)
        noise = rng.standard_normal((count, self.dim), dtype=np.float32) @ self._factor.T
        vectors = self.bases[picks] + noise
        vectors *= self.norm / np.linalg.norm(vectors, axis=1, keepdims=True)
        return picks, vectors

    def mean_cosine_to_base(self, sample: int = 2000) -> float:
        picks, vectors = self._draw(np.random.default_rng([0, 0]), sample)
        bases = self.bases[picks]
        cosines = np.sum(vectors * bases, axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(bases, axis=1)
        return float(np.mean(cosines))

    def save(self, folder: Path) -> None:
        np.save(folder / "benchmark-bases.npy", self.bases)
        (folder / "benchmark-bases.json").write_text(json.dumps({"origin": self.origin}))

    @classmethod
    def load(cls, folder: Path) -> VectorSource:
        origin = json.loads((folder / "benchmark-bases.json").read_text())["origin"]
        return cls(np.load(folder / "benchmark-bases.npy"), origin)


def real_photo_vectors(checkpoint: Path, work: Path, quick: bool, flickr8k: Path | None,
                       feature_cache: Path | None, log=print) -> VectorSource:
    """The model's search vectors of real photos (cached in `work` by checkpoint fingerprint)."""
    from photosearch.miniclip.checkpoint import read_metadata

    fingerprint = read_metadata(checkpoint)["fingerprint"]
    flickr8k = flickr8k or FLICKR8K
    flickr8k = flickr8k if flickr8k and (flickr8k / "images").is_dir() and not quick else None
    tag = "flickr8k" if flickr8k else f"bundled-x{QUICK_VIEWS if quick else BUNDLED_VIEWS}"
    saved = work / f"bases-{fingerprint}-{tag}"
    if (saved / "benchmark-bases.npy").is_file():
        return VectorSource.load(saved)
    import torch

    from photosearch.miniclip.checkpoint import load_checkpoint
    from photosearch.miniclip.data import load_captions
    from photosearch.miniclip.features import FeatureCache

    torch.set_num_threads(2)
    model = load_checkpoint(checkpoint)
    cache = FeatureCache(model, feature_cache)
    if flickr8k:
        paths = []
        for split in ("train", "dev"):
            paths += load_captions(flickr8k / f"{split}.json", flickr8k / "images", check_images=False).paths
        log(f"  base vectors: {len(paths):,} Flickr8k photos (centre view; feature cache {cache.root})")
        features = cache.image_features(paths, views=1)[:, 0]  # (N, C)
        origin = f"{len(paths):,} Flickr8k train+dev photos"
    else:
        views = QUICK_VIEWS if quick else BUNDLED_VIEWS
        paths = load_captions(BUNDLED / "captions.json", BUNDLED / "images", check_images=False).paths
        log(f"  base vectors: {len(paths)} bundled photos x {views} views")
        features = cache.image_features(paths, views=views).flatten(0, 1)  # (N*V, C)
        origin = f"{len(paths)} bundled photos x {views} augmented views"
    with torch.inference_mode():
        bases = torch.cat([model.search_vectors_from_features(features[i:i + 512])
                           for i in range(0, len(features), 512)]).float().numpy()
    source = VectorSource(bases, origin)
    saved.mkdir(parents=True, exist_ok=True)
    source.save(saved)
    return source


def text_queries(checkpoint: Path, count: int) -> tuple[list[str], np.ndarray]:
    """`count` distinct captions of the bundled photos and their search vectors (Q, D)."""
    from photosearch.indexer.service import load_query_model

    captions = sorted({e["caption"].strip() for e in json.loads((BUNDLED / "captions.json").read_text())})
    picked = [captions[i] for i in np.random.default_rng(7).permutation(len(captions))[:count]]
    vectors = load_query_model(checkpoint).encode_search_texts(picked)
    return picked, np.ascontiguousarray(vectors, dtype=np.float32)
