"""A real, short training run through the CLI on drawn shapes, and the errors users can cause."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from photosearch.cli.main import cli
from tests.conftest import COLOURS, SHAPES, draw_shape, make_shapes_set


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short real training run on drawn shapes, shared by this module's tests (it takes a while)."""
    tmp_path = tmp_path_factory.mktemp("shapes")
    images = tmp_path / "images"
    (tmp_path / "train.json").write_text(json.dumps(make_shapes_set(images, range(0, 3))))
    (tmp_path / "val.json").write_text(json.dumps(make_shapes_set(images, range(3, 4))))
    shapes_dataset = {"root": tmp_path, "images": images, "train": tmp_path / "train.json", "val": tmp_path / "val.json"}
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
    rows = json.loads(as_json.stdout)
    assert set(rows) == {"lstm", "random"}
    assert rows["lstm"]["t2i"]["R@1"] > rows["random"]["t2i"]["R@1"]


def test_colour_words_that_differ_only_in_colour_are_told_apart(trained):
    """'a red square' against the green, blue and yellow squares: only the colour differs."""
    from photosearch.miniclip.checkpoint import load_checkpoint
    from photosearch.miniclip.data import load_captions
    from photosearch.miniclip.evaluation import evaluate

    data = load_captions(trained["val"], trained["images"])
    model = load_checkpoint(trained["ckpt"])
    _, sim = evaluate(model, data)
    image_of = {name.rsplit("_", 1)[0]: i for i, name in enumerate(data.files)}  # "red_square" -> image
    hits = trials = 0
    for colour in COLOURS:
        for shape in SHAPES:
            rivals = [image_of[f"{c}_{shape}"] for c in COLOURS]  # same shape, every colour
            scores = sim[data.captions.index(f"a {colour} {shape}"), rivals]
            hits += rivals[int(np.argmax(scores))] == image_of[f"{colour}_{shape}"]
            trials += 1
    assert hits / trials >= 0.75, f"{hits} of {trials} right where chance gets 1 in {len(COLOURS)}"


def test_evaluate_on_training_photos_warns_with_the_overlap(trained, tmp_path):
    """Train photos and 12 photos the model never saw: the warning counts the 36 seen ones and the
    figures on the unseen 12 come beside."""
    fresh = make_shapes_set(trained["images"], range(5, 6))
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(json.loads(trained["train"].read_text()) + fresh))
    result = run("evaluate", "--checkpoint", trained["ckpt"], "--captions-json", mixed, "--image-root",
                 trained["images"], "--cache-dir", trained["root"] / "cache", "--json")
    assert result.exit_code == 0, result.output
    assert "warning: 36 of 48 evaluation photos were seen by lstm (36 in training)" in result.stderr
    row = json.loads(result.stdout)["lstm"]
    assert row["overlap"] == {"train": 36, "val": 0}
    assert row["unseen"]["photos"] == 12 and 0 <= row["unseen"]["t2i"]["R@1"] <= 100
    table = run("evaluate", "--checkpoint", trained["ckpt"], "--captions-json", mixed, "--image-root",
                trained["images"], "--cache-dir", trained["root"] / "cache")
    assert "lstm unseen (12 photos)" in table.stdout and "were seen by lstm" in table.stderr


def test_evaluate_on_validation_photos_alone_says_none_are_unseen(trained):
    result = run("evaluate", "--checkpoint", trained["ckpt"], "--captions-json", trained["val"], "--image-root",
                 trained["images"], "--cache-dir", trained["root"] / "cache", "--json")
    assert "12 of 12 evaluation photos were seen by lstm (0 in training, 12 in validation)" in result.stderr
    assert "no unseen photos are left to score" in result.stderr
    row = json.loads(result.stdout)["lstm"]
    assert row["overlap"] == {"train": 0, "val": 12} and row["unseen"] is None


def test_small_evaluation_sets_are_flagged_and_larger_ones_are_not(trained, tmp_path):
    small = run("evaluate", "--checkpoint", trained["ckpt"], "--captions-json", trained["val"], "--image-root",
                trained["images"], "--cache-dir", trained["root"] / "cache", "--json")
    assert "only 12 evaluation photos: chance alone reaches R@10" in small.stderr
    assert "figures on fewer than 100 photos mean little" in small.stderr
    assert any("mean little" in w for w in json.loads(small.stdout)["lstm"]["warnings"])
    big, entries = tmp_path / "big.json", []
    (tmp_path / "images").mkdir()
    for v in range(9):  # 108 photos, each unlike any the model saw (another size)
        for colour in COLOURS:
            for shape in SHAPES:
                name = f"{colour}_{shape}_big{v}.png"
                draw_shape(tmp_path / "images" / name, colour, shape, v, size=100 + v)
                entries.append({"file_name": name, "caption": f"a {colour} {shape}"})
    big.write_text(json.dumps(entries))
    result = run("evaluate", "--checkpoint", trained["ckpt"], "--captions-json", big, "--image-root",
                 tmp_path / "images", "--cache-dir", tmp_path / "cache", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and json.loads(result.stdout)["lstm"]["warnings"] == []
    assert json.loads(result.stdout)["lstm"]["overlap"] == {"train": 0, "val": 0}


def test_training_on_a_small_split_warns(trained):
    report = json.loads((trained["results"] / "metrics_lstm.json").read_text())
    assert any("only 12 evaluation photos" in w for w in report["warnings"])
    assert report["colour_t2i"]["queries"] == 36


def test_same_seed_gives_the_same_cache_and_metrics(shapes_dataset, tmp_path):
    """Two cold runs (each its own feature cache) with one seed agree to the last digit."""
    reports = []
    for run_name in ("a", "b"):
        result = run(
            "train", "--captions-json", shapes_dataset["train"], "--image-root", shapes_dataset["images"],
            "--model-type", "bow", "--preset", "tiny", "--epochs", "3", "--batch-size", "12", "--views", "3",
            "--seed", "7", "--name", "run", "--checkpoint-dir", tmp_path / run_name / "c",
            "--results-dir", tmp_path / run_name / "r", "--cache-dir", tmp_path / run_name / "cache",
        )
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / run_name / "r" / "metrics_run.json").read_text())
        reports.append({k: report[k] for k in ("metrics", "history", "fingerprint", "eval_images")})
        for h in report["history"]:
            h.pop("seconds")
    assert reports[0] == reports[1]
    caches = [sorted((tmp_path / n / "cache").rglob("*.npy")) for n in ("a", "b")]
    assert len(caches[0]) == len(caches[1]) > 0
    assert all(np.array_equal(np.load(x), np.load(y)) for x, y in zip(*caches))


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
