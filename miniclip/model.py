"""MiniCLIP: an image tower and a text tower trained into one embedding space."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from photosearch.miniclip import concepts
from photosearch.miniclip.backbones import build_backbone
from photosearch.miniclip.config import ModelConfig
from photosearch.miniclip.text_encoders import MiniLMEncoder, ProjectionHead, build_text_encoder
from photosearch.miniclip.tokenizer import WordTokenizer
from photosearch.miniclip.transforms import describe, eval_transform, train_transform

MAX_LOGIT_SCALE = math.log(100.0)


class MiniCLIP(nn.Module):
    """`encode_image`, `encode_text` and `forward`, plus the search vectors the indexer stores."""

    def __init__(self, config: ModelConfig, tokenizer: WordTokenizer | None = None, backbone_weights: str | None = None,
                 image_tower: bool = True):
        """`image_tower=False` builds the text side only (no backbone, no image head): enough to
        encode queries, without importing timm or torchvision."""
        super().__init__()
        backbone = build_backbone(config.backbone, backbone_weights) if image_tower else None
        if backbone is not None and backbone.classifier is None and (config.use_class_probs or config.concept_weight):
            config = ModelConfig.from_dict({**config.to_dict(), "use_class_probs": False, "concept_weight": 0.0})
        if tokenizer is not None:
            config = ModelConfig.from_dict({**config.to_dict(), "vocab_size": len(tokenizer)})
        self.config = config
        self.tokenizer = tokenizer
        self.backbone_weights = backbone.weights if backbone else backbone_weights
        self.image_trunk = backbone.trunk if backbone else None
        self.image_classifier = backbone.classifier if backbone else None
        self.mean, self.std = (backbone.mean, backbone.std) if backbone else (None, None)
        for module in (self.image_trunk, self.image_classifier):
            for p in module.parameters() if module is not None else ():
                p.requires_grad = config.finetune_backbone and module is self.image_trunk
        self.image_head = None
        if backbone is not None:
            in_dim = backbone.feature_dim + (1000 if config.use_class_probs else 0)
            self.image_head = ProjectionHead(in_dim, config.head_hidden, config.embed_dim, config.dropout, config.input_dropout)
        self.text_encoder = build_text_encoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self._aux: dict[str, MiniLMEncoder] = {}  # not a submodule: never saved in checkpoints
        if config.concept_weight > 0:
            self.register_buffer("concept_table", torch.zeros(1000, MiniLMEncoder.sentence_dim))
            self.register_buffer("clip_cov", torch.eye(config.embed_dim))
            self.register_buffer("concept_cov", torch.eye(MiniLMEncoder.sentence_dim))
        self.fingerprint = "untrained"
        self.train()  # puts the frozen parts in eval mode from the start

    def train(self, mode: bool = True) -> "MiniCLIP":
        """Frozen pretrained parts stay in eval mode: BatchNorm keeps its running statistics and
        MiniLM's dropout stays off, so cached features equal what inference computes."""
        super().train(mode)
        if self.image_trunk is not None and not self.config.finetune_backbone:
            self.image_trunk.eval()
        if self.image_classifier is not None:
            self.image_classifier.eval()
        if isinstance(self.text_encoder, MiniLMEncoder) and not self.config.minilm_finetune_layers:
            self.text_encoder.bert.eval()
        return self

    # -- preprocessing -------------------------------------------------------------------------
    @property
    def image_transform(self):
        return eval_transform(self.config.image_size, self.mean, self.std)

    @property
    def augment_transform(self):
        return train_transform(self.config.image_size, self.mean, self.std)

    @property
    def preprocessing_key(self) -> str:
        return f"{self.config.backbone}:{self.backbone_weights}:eval-mode:{describe(self.config.image_size, self.mean, self.std)}"

    # -- towers --------------------------------------------------------------------------------
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone pooled features (B, C) of normalised images (B, 3, H, W)."""
        if self.config.finetune_backbone and self.training:
            return self.image_trunk(images)
        with torch.no_grad():
            return self.image_trunk(images)

    def encode_image(self, images_or_features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Images (B, 3, H, W) or cached backbone features (B, C) -> embeddings (B, E)."""
        x = images_or_features
        features = x if x.dim() == 2 else self.image_features(x)  # (B, C)
        parts = [features]
        if self.training and self.config.feature_noise:
            parts = [features + self.config.feature_noise * torch.randn_like(features)]
        if self.config.use_class_probs:
            with torch.no_grad():
                parts.append(self.image_classifier(features).softmax(-1))  # (B, 1000)
        features = torch.cat(parts, dim=-1)  # (B, C [+ 1000])
        emb = self.image_head(features)
        return F.normalize(emb, dim=-1) if normalize else emb

    def text_inputs(self, texts: list[str]):
        """Raw captions -> what the text tower takes."""
        if self.config.text_encoder == "minilm":
            return texts
        ids, lengths = self.tokenizer.batch(texts)
        device = self.logit_scale.device
        return ids.to(device), lengths.to(device)

    def encode_text(self, texts, normalize: bool = True) -> torch.Tensor:
        """Captions (list of str), token tensors or cached sentence embeddings -> (B, E)."""
        if isinstance(texts, list):
            texts = self.text_inputs(texts)
        emb = self.text_encoder(texts)
        return F.normalize(emb, dim=-1) if normalize else emb

    def forward(self, image_input, text_input):
        image_emb = self.encode_image(image_input)  # (B, E)
        text_emb = self.encode_text(text_input)  # (B, E)
        return image_emb, text_emb, self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    # -- open-vocabulary concepts --------------------------------------------------------------
    @property
    def uses_concepts(self) -> bool:
        return self.config.concept_weight > 0

    def sentence_encoder(self) -> MiniLMEncoder:
        if isinstance(self.text_encoder, MiniLMEncoder):
            return self.text_encoder
        if "sentences" not in self._aux:
            from dataclasses import replace

            self._aux["sentences"] = MiniLMEncoder(replace(self.config, minilm_finetune_layers=0)).eval()
        return self._aux["sentences"]

    def build_concept_table(self) -> None:
        """Embed the 1,000 ImageNet class names once; they are stored in the checkpoint."""
        with torch.no_grad():
            names = [concepts.CLASS_PROMPT.format(n) for n in concepts.imagenet_class_names()]
            self.concept_table.copy_(self.sentence_encoder().sentence_embeddings(names))

    def concept_vectors(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.image_classifier(features)  # (B, 1000)
        return concepts.concept_vectors(logits, self.concept_table, self.config.concept_top_t)

    def calibrate(self, features: torch.Tensor) -> None:
        """Store the covariances of reference photos' embeddings, used to standardise scores."""
        with torch.no_grad():
            self.clip_cov.copy_(concepts.covariance(self.encode_image(features)))
            self.concept_cov.copy_(concepts.covariance(self.concept_vectors(features)))

    # -- search vectors (the indexer's contract) -----------------------------------------------
    @property
    def search_dim(self) -> int:
        return self.config.embed_dim + (MiniLMEncoder.sentence_dim if self.uses_concepts else 0)

    @torch.inference_mode()
    def search_vectors_from_features(self, features: torch.Tensor) -> torch.Tensor:
        parts = [self.encode_image(features)]
        if self.uses_concepts:
            parts.append(self.concept_vectors(features))
        return torch.cat(parts, dim=-1)  # (B, D)

    @torch.inference_mode()
    def encode_search_images(self, images: torch.Tensor) -> np.ndarray:
        """Preprocessed images (B, 3, H, W) -> search vectors (B, D) float32."""
        images = images.to(self.logit_scale.device)
        return self.search_vectors_from_features(self.image_features(images)).float().cpu().numpy()

    @torch.inference_mode()
    def encode_search_texts(self, texts: list[str], concept_weight: float | None = None) -> np.ndarray:
        """Queries -> search vectors (N, D): inner product with a photo's vector is the fused score.

        The two cosines are standardised per query (their spread over reference photos) and mixed
        with `concept_weight`; the result is rescaled to a weighted mean of the two cosines, so the
        score reads like a cosine while ranking exactly as the standardised sum.
        """
        weight = self.config.concept_weight if concept_weight is None else concept_weight
        if not self.uses_concepts:
            return self.encode_text(texts).float().cpu().numpy()
        sentences = self.sentence_encoder().sentence_embeddings(texts)  # (N, 384)
        clip_q = self.encode_text(sentences if self.config.text_encoder == "minilm" else texts)  # (N, E)
        a = 1.0 / concepts.score_std(clip_q, self.clip_cov)  # (N,)
        b = weight / concepts.score_std(sentences, self.concept_cov)
        total = a + b
        fused = torch.cat([clip_q * (a / total)[:, None], sentences * (b / total)[:, None]], dim=-1)
        return fused.float().cpu().numpy()  # (N, D)
