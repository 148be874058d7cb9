"""A real, short training run through the CLI on drawn shapes, and the errors users can cause."""

import json

import pytest
from click.testing import CliRunner

from photosearch.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def trained(shapes_dataset, tmp_path):
    ckpt_dir, results = tmp_path / "ckpt", tmp_path / "results"
    result = run(
        "train", "--captions-json", shapes_dataset["train"], "--image-root", shapes_dataset["images"],
        "--val-captions-json", shapes_dataset["val"], "--model-type", "lstm", "--preset", "tiny",
        "--epochs", "40", "--batch-size", "12", "--lr", "3e-3", "--views", "2", "--seed", "1",
        "--checkpoint-dir", ckpt_dir, "--results-dir", results, "--cache-dir", tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    return {"ckpt": ckpt_dir / "lstm.safetensors", "results": results, **shapes_dataset}


def test_short_training_learns_far_above_random(trained):
    report = json.loads((trained["results"] / "metrics_lstm.json").read_text())
    r1 = report["metrics"]["t2i"]["R@1"]
    chance = report["random"]["t2i"]["R@1"]
    assert report["eval_images"] == 12
    assert r1 >= 40.0 and r1 > 4 * max(chance, 100 / 12), (r1, chance)
    for name in ("training_curves_lstm.png", "retrieval_results_lstm.png", "metrics_comparison.png"):
        assert (trained["results"] / name).stat().st_size > 1000


def test_evaluate_prints_table_and_json(trained):
    args = ["evaluate", "--checkpoint", trained["ckpt"], "--captions-json", trained["val"],
            "--image-root", trained["images"], "--cache-dir", trained["root"] / "cache"]
    table = run(*args)
    assert table.exit_code == 0, table.output
    assert "text→image" in table.output and "image→text" in table.output and "random" in table.output
    as_json = run(*args, "--json")
    rows = json.loads(as_json.output)
    assert set(rows) == {"lstm", "random"}
    assert rows["lstm"]["t2i"]["R@1"] > rows["random"]["t2i"]["R@1"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ('{"file_name": "a.png"}', "must hold a JSON list"),
        ('[{"file": "a.png", "text": "x"}]', "entry 0 is not"),
        ("[]", "holds no captions"),
        ('[{"file_name": "nope.png", "caption": "a cat"}]', "no usable captions (1 missing image)"),
        ('[{"file_name": "red_circle_0.png", "caption": "   "}]', "no usable captions (1 empty caption)"),
    ],
)
def test_bad_captions_file_gives_one_line_error(shapes_dataset, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run("train", "--captions-json", bad, "--image-root", shapes_dataset["images"], "--epochs", "1")
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_and_unreadable_images_are_skipped_and_counted(shapes_dataset, tmp_path):
    entries = json.loads(shapes_dataset["train"].read_text())
    entries += [{"file_name": "gone.png", "caption": "a ghost"}, {"file_name": "broken.png", "caption": "noise"}]
    (shapes_dataset["images"] / "broken.png").write_bytes(b"not an image at all")
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(entries))
    result = run("train", "--captions-json", path, "--image-root", shapes_dataset["images"], "--preset", "tiny",
                 "--model-type", "bow", "--epochs", "1", "--checkpoint-dir", tmp_path / "c", "--results-dir", tmp_path / "r",
                 "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "1 missing image" in result.output and "1 unreadable image" in result.output


def test_finetune_backbone_trains_end_to_end_and_saves_the_backbone(shapes_dataset, tmp_path):
    from photosearch.miniclip.checkpoint import load_checkpoint

    result = run(
        "train", "--captions-json", shapes_dataset["train"], "--image-root", shapes_dataset["images"],
        "--val-captions-json", shapes_dataset["val"], "--model-type", "bow", "--preset", "tiny",
        "--finetune-backbone", "--epochs", "2", "--batch-size", "12", "--name", "ft",
        "--checkpoint-dir", tmp_path / "c", "--results-dir", tmp_path / "r", "--cache-dir", tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    from safetensors import safe_open

    with safe_open(str(tmp_path / "c" / "ft.safetensors"), framework="pt") as f:
        assert any(k.startswith("image_trunk.") for k in f.keys())
    model = load_checkpoint(tmp_path / "c" / "ft.safetensors")
    assert model.config.finetune_backbone and not model.image_trunk.training
