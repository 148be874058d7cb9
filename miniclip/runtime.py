"""The serving model: a checkpoint's exported towers on ONNX Runtime, without torch.

`load_search_model` is what index, watch, query, similar, serve and demo use. It reads the
checkpoint's header (no tensors), the export manifest beside it (`export_manifest`), checks
every file it will run against the manifest's sha256, and builds the ONNX Runtime sessions it
was asked for. Photos go through `preprocess` (Pillow: the whole photo resized to the square
input, bicubic, as torchvision's `Resize` does on PIL images) and `encode_search_images`;
queries through `encode_search_texts`, which runs MiniLM in numpy (`sentence_encoder`) where the
text graph takes sentence embeddings. This is the inference half of MiniCLIP built once, apart
from the `nn.Module` that trains (as Immich's machine-learning service and open_clip's
`create_model_and_transforms` keep them).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from photosearch.miniclip.checkpoint_header import default_checkpoint_path, read_metadata
from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.export_manifest import (
    MINILM_DIR, MINILM_TOKENIZER, MINILM_WEIGHTS, ExportError, ExportPaths, read_manifest, verified_file,
)
from photosearch.miniclip.file_hashes import verify_sha256


# Photos per ONNX Runtime call. Small batches are faster on a CPU (the activations stay in cache)
# and bound the memory arena, which keeps the largest batch's peak: on the 2-core benchmark
# machine the image tower ran 73 / 80 / 76 / 66 / 53 photos/s at batch 1 / 2 / 4 / 8 / 32, with
# peak RSS 155 / 173 / 209 / 303 / 833 MB (benchmarks/README.md).
MODEL_BATCH = 4


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _session(path: Path, threads: int, spinning: bool, paths: ExportPaths):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no graph-optimisation notices on stderr
    # Spinning threads wait for work by burning a core; the decode threads need it more.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ExportError(f"{path} cannot be loaded by ONNX Runtime ({type(exc).__name__}): "
                          f"run `{paths.export_command()}`") from None


class SearchModel:
    """Search vectors for photos and queries from one exported checkpoint.

    Attributes: `fingerprint` (the model fingerprint a library stores: checkpoint + export +
    preprocessing), `checkpoint_fingerprint`, `checkpoint_path`, `search_dim` (D),
    `image_size` (S), `text_encoder` (minilm | lstm | transformer | bow).
    """

    def __init__(self, paths: ExportPaths, meta: dict, manifest: dict):
        self.paths = paths
        self.checkpoint_path = paths.checkpoint
        self.checkpoint_fingerprint = meta["fingerprint"]
        self.fingerprint = manifest["fingerprint"]
        self.manifest = manifest
        self.search_dim = int(manifest["search_dim"])
        self.image_size = int(manifest["preprocessing"]["size"])
        self.text_encoder = manifest["text_encoder"]
        self._meta = meta
        self._image = self._text = self._sentences = self._words = None
        self._loading = threading.Lock()  # a daemon's socket threads may ask for a tower at once

    # -- photos ------------------------------------------------------------------------------
    @property
    def image_tower_ready(self) -> bool:
        return self._image is not None

    def load_image_tower(self, threads: int | None = None, spinning: bool = False) -> "SearchModel":
        """Build the image session: `threads` intra-op threads (default: all cores)."""
        path = verified_file(self.paths, self.manifest, "image")
        self._image = _session(path, threads or available_cores(), spinning, self.paths)
        return self

    def preprocess(self, image) -> np.ndarray:
        """An RGB PIL image -> uint8 (S, S, 3): the whole photo resized to the model's square input."""
        from PIL import Image

        side = self.image_size
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image.resize((side, side), Image.Resampling.BICUBIC), dtype=np.uint8)

    def encode_search_images(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (B, S, S, 3) from `preprocess` -> search vectors (B, D) float32."""
        return self._run_image(pixels)[0]

    @property
    def class_names(self) -> list[str] | None:
        """The names of the image graph's class probabilities (tags), None for an export without."""
        names = self.manifest.get("classes")
        return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None

    def encode_tagged_images(self, pixels: np.ndarray) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Like `encode_search_images`, plus each photo's tags: [(class name, probability)] above
        `tags.TAG_THRESHOLD`, most probable first (empty lists for an export without classes)."""
        from photosearch.miniclip.tags import photo_tags

        vectors, probs = self._run_image(pixels)
        names = self.class_names
        if probs is None or names is None or probs.shape[1:] != (len(names),):
            return vectors, [[] for _ in range(len(vectors))]
        return vectors, photo_tags(probs, names)

    def _run_image(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, D) vectors and the (B, C) class probabilities, or None where the graph has none."""
        if self._image is None:
            with self._loading:
                if self._image is None:
                    self.load_image_tower()
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        if pixels.ndim != 4 or pixels.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(f"expected pixels (B, {self.image_size}, {self.image_size}, 3), got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, self.search_dim), dtype=np.float32), None
        runs = [self._image.run(None, {"pixels": pixels[i:i + MODEL_BATCH]})
                for i in range(0, len(pixels), MODEL_BATCH)]
        vectors = np.concatenate([run[0] for run in runs]).astype(np.float32, copy=False)
        probs = np.concatenate([run[1] for run in runs]) if len(runs[0]) > 1 else None
        return vectors, probs

    # -- queries -----------------------------------------------------------------------------
    def load_text_tower(self) -> "SearchModel":
        """Build the text session (one thread: a query is a few small products) and its encoders."""
        path = verified_file(self.paths, self.manifest, "text")
        session = _session(path, 1, False, self.paths)
        inputs = {i.name for i in session.get_inputs()}
        if "ids" in inputs:
            from photosearch.miniclip.tokenizer import WordTokenizer

            try:
                self._words = WordTokenizer.from_dict(json.loads(self._meta["tokenizer"]))
            except (KeyError, ValueError, TypeError) as exc:  # absent, malformed, or too large (tokenizer bounds)
                raise CheckpointError(f"{self.checkpoint_path} has no usable vocabulary for its "
                                      f"{self.text_encoder} text tower ({exc})") from None
        if "sentences" in inputs:
            self._sentences = self._load_sentence_encoder()
        self._text_inputs = inputs  # the exporter drops inputs a graph does not use (lengths, for some)
        self._text = session  # last: its presence means the text side is ready
        return self

    def _load_sentence_encoder(self):
        from photosearch.miniclip.sentence_encoder import load_sentence_encoder, map_safetensors

        files = self.manifest["files"]
        weights_file, tokenizer_file = MINILM_DIR / MINILM_WEIGHTS, MINILM_DIR / MINILM_TOKENIZER
        verify_sha256(tokenizer_file, files.get("minilm_tokenizer", ""), "the bundled MiniLM tokenizer")
        if self.manifest["preprocessing"].get("sentence_encoder") == "checkpoint":  # fine-tuned layers
            source, prefix = self.checkpoint_path, "text_encoder.bert."
            verify_sha256(source, files.get("checkpoint", ""), "the checkpoint the export was made from")
        else:
            verify_sha256(weights_file, files.get("minilm_weights", ""), "the bundled MiniLM weights")
            source, prefix = weights_file, ""
        try:
            weights = map_safetensors(source, prefix)
        except (OSError, ValueError, KeyError, TypeError):
            raise CheckpointError(f"{source} is corrupt: its tensors cannot be read") from None
        return load_sentence_encoder(weights, tokenizer_file)

    def encode_search_texts(self, texts: list[str]) -> np.ndarray:
        """Queries -> search vectors (N, D) float32; a photo's score is the inner product.

        As `MiniCLIP.encode_search_texts`: with ConSE fusion, the MiniCLIP and concept cosines are
        standardised per query and mixed, rescaled to read like a cosine.
        """
        if self._text is None:
            with self._loading:
                if self._text is None:
                    self.load_text_tower()
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.search_dim), dtype=np.float32)
        feed = {}
        if self._words is not None:
            feed["ids"], feed["lengths"] = self._words.arrays(texts)
        if self._sentences is not None:
            feed["sentences"] = self._sentences(texts)
        feed = {name: value for name, value in feed.items() if name in self._text_inputs}
        return self._text.run(None, feed)[0].astype(np.float32, copy=False)


def load_search_model(checkpoint: str | os.PathLike | None = None, *, image: bool = False, text: bool = False,
                      image_threads: int | None = None) -> SearchModel:
    """The SearchModel of `checkpoint` (default: the shipped one), with the towers asked for built
    now (the others are built on first use).

    Raises CheckpointError (ExportError when the ONNX export is missing, stale or corrupt; the
    message names the `photosearch export` command to run).
    """
    path = Path(checkpoint) if checkpoint else default_checkpoint_path()
    meta = read_metadata(path)
    paths = ExportPaths.of(path)
    model = SearchModel(paths, meta, read_manifest(paths, meta.get("fingerprint", "")))
    if image:
        model.load_image_tower(image_threads)
    if text:
        model.load_text_tower()
    return model


def export_fingerprint(checkpoint: str | os.PathLike) -> str | None:
    """The model fingerprint of a checkpoint's export, from the files' headers alone (no hashing,
    no sessions); None when the checkpoint or its export cannot be read."""
    try:
        path = Path(checkpoint)
        meta = read_metadata(path)
        paths = ExportPaths.of(path)
        return read_manifest(paths, meta.get("fingerprint", ""))["fingerprint"]
    except CheckpointError:
        return None
