"""Model commands: `train`, `evaluate` and `export`. Heavy imports happen inside the commands.

All three need torch, which only the `train` extra installs; without it they say, in one line,
what to install.
"""

from __future__ import annotations

import importlib.util

import click

from photosearch.cli.errors import UserError, user_errors
from photosearch.cli.output import dump, say

TRAINING_MODULES = ("torch", "timm", "transformers")  # what the `train` extra adds for these commands


def require_training_extra(command: str) -> None:
    """A one-line ClickException when the `train` extra (torch, ...) is not installed."""
    missing = [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"photosearch {command} needs the training extra ({', '.join(missing)} not installed): "
            "pip install 'photosearch[train]' (from a checkout: pip install -e '.[train]')")


@click.command()
@click.option("--captions-json", required=True, type=click.Path(dir_okay=False), help="Training captions: [{file_name, caption}].")
@click.option("--image-root", required=True, type=click.Path(file_okay=False), help="Folder the file_names are relative to.")
@click.option("--model-type", "--text-encoder", "model_type", type=click.Choice(["minilm", "lstm", "transformer", "bow"]), default="minilm", show_default=True, help="Text encoder.")
@click.option("--backbone", type=click.Choice(["efficientnet_lite0", "resnet18"]), default="efficientnet_lite0", show_default=True)
@click.option("--backbone-weights", type=click.Path(dir_okay=False), default=None, help="Backbone state_dict file (e.g. ResNet18 ImageNet weights).")
@click.option("--epochs", default=50, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(2))
@click.option("--lr", default=3e-4, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--weight-decay", default=None, type=float, help="AdamW weight decay (default 1e-4).")
@click.option("--no-decay-norms", is_flag=True, help="No weight decay on biases, norms and the temperature.")
@click.option("--hard-negative-weight", default=None, type=click.FloatRange(min=0), help="Weight of a VSE++ hardest-negative hinge beside InfoNCE (default 0: off).")
@click.option("--views", default=None, type=click.IntRange(1), help="Cached views per image (default 3: centre + 2 augmented).")
@click.option("--patience", default=None, type=click.IntRange(1), help="Early-stopping patience in epochs (default 10).")
@click.option("--checkpoint-dir", default="checkpoints", show_default=True, type=click.Path(file_okay=False))
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--val-captions-json", default=None, type=click.Path(dir_okay=False), help="Explicit validation captions (else a seeded 70/15/15 split).")
@click.option("--name", default=None, help="Name of the checkpoint and result files (default: the model type).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--finetune-backbone", is_flag=True, help="Train the backbone end to end (no feature cache).")
@click.option("--concept-weight", default=None, type=click.FloatRange(min=0), help="ConSE fusion weight (default 0.25 with MiniLM on EfficientNet-Lite0, else 0).")
@click.option("--word-init", type=click.Choice(["random", "minilm"]), default=None, help="Word embeddings of lstm/transformer/bow start from MiniLM's (default) or random.")
@click.option("--preset", type=click.Choice(["default", "tiny"]), default="default", show_default=True, help="Architecture preset (tiny: for tests).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False), help="Feature cache (default ~/.cache/photosearch).")
def train(**opts) -> None:
    """Train MiniCLIP on captioned photos and write a checkpoint, metrics and figures.

    \b
    Example:
        photosearch train --captions-json captions.json --image-root photos/ --epochs 30
    """
    require_training_extra("train")
    with user_errors():
        from photosearch.miniclip.jobs import train_from_options

        outcome = train_from_options(opts)
    m = outcome.metrics["t2i"]
    if outcome.skipped:
        click.echo("skipped: " + ", ".join(f"{n} {r}" for r, n in outcome.skipped.items()), err=True)
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    say(f"checkpoint: {outcome.checkpoint}")
    say(f"metrics:    {outcome.metrics_path}")
    click.echo(f"text→image R@1 {m['R@1']:.1f}  R@5 {m['R@5']:.1f}  R@10 {m['R@10']:.1f}  MRR {m['MRR']:.3f}  MedR {m['MedR']:.0f}"
               f"  (best epoch {outcome.best_epoch} of {outcome.epochs_run}, {outcome.seconds:.0f} s)")


@click.command()
@click.option("--checkpoint", "checkpoints", multiple=True, type=click.Path(dir_okay=False), help="Checkpoint(s) to compare (default: the shipped one).")
@click.option("--captions-json", required=True, type=click.Path(dir_okay=False))
@click.option("--image-root", required=True, type=click.Path(file_okay=False))
@click.option("--concept-weight", default=None, type=click.FloatRange(min=0), help="Override the ConSE fusion weight (0 = MiniCLIP alone).")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False))
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
def evaluate(checkpoints, captions_json, image_root, concept_weight, as_json, cache_dir, device) -> None:
    """Report R@1/5/10, MRR and median rank, text→image and image→text, beside a random baseline.

    \b
    Example:
        photosearch evaluate --checkpoint checkpoints/default.safetensors \\
            --captions-json dev.json --image-root images/
    """
    require_training_extra("evaluate")
    with user_errors():
        from photosearch.miniclip.jobs import evaluate_checkpoints

        rows = evaluate_checkpoints(list(checkpoints), captions_json, image_root, concept_weight, cache_dir, device)
    for warning in dict.fromkeys(w for row in rows.values() for w in row.get("warnings", ())):
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        dump(rows)
        return
    say(format_table(rows))


@click.command()
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint to export (default: the shipped checkpoints/default.safetensors).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def export(checkpoint, as_json) -> None:
    """Export a checkpoint's image and text towers as ONNX graphs for the torch-free runtime.

    Writes <name>.image.onnx, <name>.text.onnx and <name>.export.json beside the checkpoint:
    what index, watch, query, serve and demo run. `photosearch train` does this itself; use
    it for a checkpoint trained before, or when a command says the export is missing or stale.

    \b
    Example:
        photosearch export --checkpoint checkpoints/lstm.safetensors
    """
    require_training_extra("export")
    with user_errors():
        from photosearch.miniclip.checkpoint_header import default_checkpoint_path
        from photosearch.miniclip.export import export_checkpoint

        path = checkpoint or default_checkpoint_path()
        try:
            written = export_checkpoint(path)
        except OSError as exc:
            raise UserError(f"cannot write the export beside {path}: {exc.strerror or exc}; "
                                       "copy the checkpoint into a folder you can write and export that copy") from None
    if as_json:
        dump(dict(sorted(written.items())))
        return
    for file in written.get("paths", []):
        say(f"wrote {file}")
    seconds = written.get("seconds")
    click.echo(f"fingerprint {written.get('fingerprint')}" + (f"  ({seconds:.1f} s)" if seconds is not None else ""))


def format_table(rows: dict) -> str:
    """Both directions for every row; a checkpoint that saw some of the photos gets an 'unseen'
    row (its figures on the others), and the colour queries get their own block."""
    table: list[tuple[str, dict, dict]] = []  # (label, text→image, image→text)
    for name, m in rows.items():
        table.append((name, m["t2i"], m["i2t"]))
        if m.get("unseen"):
            table.append((f"{name} unseen ({m['unseen']['photos']} photos)", m["unseen"]["t2i"], m["unseen"]["i2t"]))
    width = max(len(label) for label, _, _ in table) + 2
    header = f"{'model':<{width}}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'MRR':>8}{'MedR':>7}"

    def line(label: str, r: dict) -> str:
        return f"{'':<12}{label:<{width}}{r['R@1']:>7.1f}{r['R@5']:>7.1f}{r['R@10']:>7.1f}{r['MRR']:>8.3f}{r['MedR']:>7.0f}"

    lines = []
    for column, title in ((1, "text→image"), (2, "image→text")):
        lines.append(f"{title:<12}{header}")
        lines += [line(row[0], row[column]) for row in table]
        lines.append("")
    colour = {name: m["colour_t2i"] for name, m in rows.items() if m.get("colour_t2i")}
    if colour:
        queries = next(iter(colour.values()))["queries"]
        lines.append(f"{'colour':<12}{header}   (text→image, the {queries} captions naming a colour)")
        lines += [line(name, r) for name, r in colour.items()]
    return "\n".join(lines).rstrip()


COMMANDS = [train, evaluate, export]
