"""The image tower on ONNX Runtime: graph optimisation level, a saved optimised model, fp16 or
int8 weights. Which of them pay, and what they cost in fidelity.

    .venv/bin/python -m benchmarks.onnx_variants [--checkpoint C] [--rounds 3] [--threads 1,2]

Variants of the checkpoint's `*.image.onnx` are written under --work-dir (never the repo):
- fp32: the export as shipped;
- fp16-stored: every large float32 weight stored as float16 with a Cast back to float32 in the
  graph (ONNX Runtime folds the casts when the session starts: float32 arithmetic, half the file);
- fp16 compute: `onnxruntime.transformers.float16.convert_float_to_float16` (keep_io_types);
- int8 dynamic, heads: `quantize_dynamic` on MatMul/Gemm only (the heads' 2280x1024 layers);
- int8 dynamic, all: `quantize_dynamic` including the backbone's Convs (ConvInteger);
- int8 static QDQ: `quantize_static` per-channel, calibrated on 64 Flickr8k train photos (or the
  generated 12 MP photos when Flickr8k is absent) - never on the demo photos it is judged on.

Each is timed at the runtime's batch (`MODEL_BATCH`, or --batch) on ORT_ENABLE_BASIC and ORT_ENABLE_ALL, with 1 and 2
intra-op threads (spinning off, as the runtime sets it), interleaved, `--rounds` times; and judged
by the minimum cosine, over the 51 demo photos (examples/photos/images, decoded and preprocessed
as the embedder does), to the torch float32 model fed the very same uint8 pixels. The bar: 0.999.
Session start: fresh sessions of fp32 at each level, and of a model saved already optimised
(`optimized_model_filepath`) loaded with optimisations off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "photos" / "images"
FLICKR8K = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "flickr8k" / "images"
BAR = 0.999


def _pixels(model, paths) -> np.ndarray:
    from photosearch.indexer.images import load_photo

    return np.stack([model.preprocess(load_photo(p, target=max(1, -(-model.image_size // 2))).image) for p in paths])


def _torch_reference(checkpoint: Path, pixels: np.ndarray) -> np.ndarray:
    import torch

    from photosearch.miniclip.checkpoint import load_checkpoint
    from photosearch.miniclip.export import _ImageGraph

    torch.set_num_threads(2)
    graph = _ImageGraph(load_checkpoint(checkpoint).eval()).eval()
    with torch.inference_mode():
        return torch.cat([graph(torch.from_numpy(pixels[i:i + 16])) for i in range(0, len(pixels), 16)]).numpy()


def _fp16_stored(source: Path, target: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    casts = []
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT and np.prod(init.dims) >= 1024:
            array = numpy_helper.to_array(init).astype(np.float16)
            name = init.name
            init.CopyFrom(numpy_helper.from_array(array, name + "_fp16"))
            casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(target))


def _fp16_compute(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(target))


def _calibration(model, work: Path, count: int = 64) -> tuple[np.ndarray, str]:
    if FLICKR8K.is_dir():
        paths = sorted(FLICKR8K.glob("*.jpg"))[1000: 1000 + count]
        return _pixels(model, paths), f"{len(paths)} Flickr8k photos"
    from benchmarks.photos import photo_set

    paths = photo_set(work, 4000, 3000, 160).paths[:count]
    return _pixels(model, paths), f"{len(paths)} generated 12 MP photos"


def build_variants(source: Path, folder: Path, model, work: Path, log=print) -> dict[str, Path]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder.mkdir(parents=True, exist_ok=True)
    out = {"fp32 (shipped)": source}
    makers = {
        "fp16-stored (fp32 compute)": lambda t: _fp16_stored(source, t),
        "fp16 compute": lambda t: _fp16_compute(source, t),
        "int8 dynamic, MatMul/Gemm only": lambda t: quantize_dynamic(
            str(prepped), str(t), op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8),
        "int8 dynamic, all (ConvInteger)": lambda t: quantize_dynamic(
            str(prepped), str(t), weight_type=QuantType.QUInt8),
    }
    prepped = folder / "prepped.onnx"
    if not prepped.is_file():
        quant_pre_process(str(source), str(prepped), skip_symbolic_shape=True)
    for i, (name, make) in enumerate(makers.items()):
        target = folder / f"variant{i}.onnx"
        if not target.is_file():
            log(f"  making {name}")
            make(target)
        out[name] = target
    target = folder / "variant-static.onnx"
    calib, origin = _calibration(model, work)
    if not target.is_file():
        log(f"  making int8 static QDQ (calibrated on {origin})")

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter([{"pixels": calib[i:i + 8]} for i in range(0, len(calib), 8)])

            def get_next(self):
                return next(self.batches, None)

        quantize_static(str(prepped), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    out[f"int8 static QDQ, per-channel ({origin})"] = target
    return out


def _session(path: Path, level: str, threads: int, save_to: Path | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ms_per_photo(session, batch: np.ndarray, repeats: int) -> float:
    """The median of `repeats` runs, per photo."""
    session.run(None, {"pixels": batch})
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, {"pixels": batch})
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) / len(batch) * 1e3


def _min_cosine(session, pixels: np.ndarray, reference: np.ndarray) -> float:
    got = np.concatenate([session.run(None, {"pixels": pixels[i:i + 16]})[0] for i in range(0, len(pixels), 16)])
    cos = np.sum(got * reference, 1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
    return float(cos.min())


def _start_times(variants: dict[str, Path], folder: Path, rounds: int) -> dict[str, list[float]]:
    source, saved = variants["fp32 (shipped)"], folder / "optimised-all.onnx"
    _session(source, "ORT_ENABLE_ALL", 2, save_to=saved)
    cases = [("shipped file, ORT_ENABLE_BASIC", source, "ORT_ENABLE_BASIC"),
             ("shipped file, ORT_ENABLE_ALL", source, "ORT_ENABLE_ALL"),
             ("saved ENABLE_ALL-optimised file, ORT_DISABLE_ALL", saved, "ORT_DISABLE_ALL"),
             ("fp16-stored file, ORT_ENABLE_ALL", variants["fp16-stored (fp32 compute)"], "ORT_ENABLE_ALL"),
             ("int8 dynamic heads file, ORT_ENABLE_ALL", variants["int8 dynamic, MatMul/Gemm only"], "ORT_ENABLE_ALL")]
    times = {name: [] for name, _, _ in cases}
    for _ in range(rounds):
        for name, path, level in cases:
            started = time.perf_counter()
            _session(path, level, 2)
            times[name].append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--levels", default="ORT_ENABLE_BASIC,ORT_ENABLE_ALL")
    parser.add_argument("--batch", type=int, default=None, help="photos per run (default: the runtime's MODEL_BATCH)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    args = parser.parse_args(argv)

    from benchmarks.models import benchmark_checkpoint
    from photosearch.miniclip import runtime
    from photosearch.miniclip.runtime import load_search_model

    def log(message):
        print(message, file=sys.stderr, flush=True)

    checkpoint = benchmark_checkpoint(args.work_dir, False, args.checkpoint)[0]
    model = load_search_model(checkpoint)
    source = model.paths.image
    folder = args.work_dir / f"onnx-variants-{model.manifest['files']['image'][:16]}"  # by the graph file's sha256
    variants = build_variants(Path(source), folder, model, args.work_dir, log)
    demo = _pixels(model, sorted(EXAMPLES.glob("*.jpg")))
    reference = _torch_reference(checkpoint, demo)
    size = args.batch or getattr(runtime, "MODEL_BATCH", 32)
    batch = np.concatenate([demo] * -(-size // len(demo)))[:size]
    repeats = max(3, 96 // size)  # ~100 photos per measurement
    threads = [int(t) for t in args.threads.split(",")]
    levels = args.levels.split(",")
    cosine, timings = {}, {}
    for name, path in variants.items():
        try:
            cosine[name] = _min_cosine(_session(path, "ORT_ENABLE_ALL", 2), demo, reference)
        except Exception as exc:  # noqa: BLE001 - a variant ORT cannot run is reported, not fatal
            cosine[name] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
    runnable = [n for n in variants if not isinstance(cosine[n], str)]
    sessions = {(n, lv, t): _session(variants[n], lv, t) for n in runnable for lv in levels for t in threads}
    for _ in range(args.rounds):  # interleaved: every setting once per round
        for key, session in sessions.items():
            timings.setdefault(key, []).append(_ms_per_photo(session, batch, repeats))
    print(f"image tower {source} ({model.fingerprint}); batch {size}; {args.rounds} rounds, median (min-max) over "
          f"rounds of ms per photo (each round: median of {repeats} runs); min cosine to torch float32 on {len(demo)} demo photos (same pixels)")
    head = "".join(f"  {lv.removeprefix('ORT_ENABLE_')[:5]} {t}t".rjust(22) for lv in levels for t in threads)
    print(f"{'variant':58} {'MB':>5} {'min cos':>10}{head}")
    for name, path in variants.items():
        cells = "".join(
            f"{statistics.median(timings[(name, lv, t)]):9.1f} ({min(timings[(name, lv, t)]):.1f}-"
            f"{max(timings[(name, lv, t)]):.1f})".rjust(22) if name in runnable else "" for lv in levels for t in threads)
        cos = cosine[name]
        verdict = cos if isinstance(cos, str) else f"{cos:.7f}" + ("" if cos >= BAR else " <bar")
        print(f"{name:58} {path.stat().st_size / 1e6:5.1f} {verdict:>10}{cells}")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine: compare within a column)")
    print("\nsession start (fp32, 2 threads), median (min-max) of", args.rounds, "fresh sessions:")
    for name, seconds in _start_times(variants, folder, args.rounds).items():
        print(f"  {name:52} {statistics.median(seconds) * 1e3:7.0f} ms ({min(seconds) * 1e3:.0f}-{max(seconds) * 1e3:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
