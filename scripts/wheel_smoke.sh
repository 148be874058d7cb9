#!/usr/bin/env bash
# The wheel, as a user gets it: build it from this checkout, install it in a fresh venv in a
# temporary folder (no checkout on sys.path), and run `photosearch demo --batch` and
# `photosearch query` on it. Also checks what the distribution puts in site-packages: nothing at
# the top level but `photosearch` and its dist-info, the shipped model and demo photos inside,
# and no torch pulled in by the runtime dependencies.
#
#   bash scripts/wheel_smoke.sh            # PYTHON=python3.11 to pick the interpreter
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/photosearch-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
say() { echo "wheel smoke: $*" >&2; }
fail() { echo "wheel smoke: FAILED: $*" >&2; exit 1; }

# 1. The source to build: the checkout's files (tracked, plus new ones git does not ignore), copied,
#    so that no stale build/ folder or local leftovers can slip into the wheel.
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z -co --exclude-standard \
        | tar --null --ignore-failed-read -cf - -T - 2>/dev/null) | tar -C "$WORK/src" -xf -
else
    cp -a "$REPO/." "$WORK/src/"
    rm -rf "$WORK/src/.venv" "$WORK/src/build"
fi

say "fresh venv in $WORK/venv ($("$PYTHON" --version 2>&1))"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"

say "building the wheel"
"$VPY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; fail "pip wheel did not build the project"; }
WHEELS=("$WORK"/dist/photosearch-*.whl)
[ -f "${WHEELS[0]}" ] || fail "no photosearch wheel in $WORK/dist"
WHEEL=${WHEELS[0]}
say "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"

# 2. What the wheel holds: one top-level package, the model, the demo photos, the web page.
"$VPY" - "$WHEEL" <<'EOF' || fail "the wheel's contents (above)"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
problems = []
top = sorted({n.split("/")[0] for n in names} - {"photosearch"})
if len(top) != 1 or not (top[0].startswith("photosearch-") and top[0].endswith(".dist-info")):
    problems.append(f"top level of the wheel: {top} besides photosearch/ (want only its dist-info)")
need = ["photosearch/checkpoints/default.safetensors",
        "photosearch/checkpoints/default.image.onnx",
        "photosearch/checkpoints/default.text.onnx",
        "photosearch/checkpoints/default.export.json",
        "photosearch/indexer/web_assets/index.html",
        "photosearch/examples/photos/captions.json",
        "photosearch/examples/photos/LICENSE.md"]
problems += [f"missing {n}" for n in need if n not in names]
photos = [n for n in names if n.startswith("photosearch/examples/photos/images/") and n.endswith(".jpg")]
if len(photos) < 10:
    problems.append(f"only {len(photos)} demo photos under photosearch/examples/photos/images/")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

say "installing it with its runtime dependencies"
"$VPY" -m pip install -q "$WHEEL" >"$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log" >&2; fail "pip install of the wheel"; }
say "installed: the venv is $(du -sh "$WORK/venv" | cut -f1)"

# 3. Installed: nothing at the top level of site-packages but photosearch, code from the venv
#    (not a checkout), and the runtime without torch.
cd "$WORK/run"
env -u PYTHONPATH "$VPY" - "$WORK/venv" <<'EOF' || fail "the installed distribution (above)"
import importlib.metadata as md, importlib.util, sys
problems = []
files = md.distribution("photosearch").files or []
top = sorted({f.parts[0] for f in files} - {"..", "photosearch"}  # "..": the bin/ script
             - {f.parts[0] for f in files if f.parts[0].startswith("photosearch-") and f.parts[0].endswith(".dist-info")})
if top:
    problems.append(f"installed at the top level of site-packages besides photosearch: {top}")
import photosearch.cli.main
where = photosearch.cli.main.__file__
if not where.startswith(sys.argv[1]):
    problems.append(f"photosearch.cli.main comes from {where}, not the venv")
heavy = [m for m in ("torch", "torchvision", "timm", "transformers") if importlib.util.find_spec(m)]
if heavy:
    problems.append(f"the runtime install pulled in {heavy}")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

# 4. The demo and a query, with the installed command, from a folder with no checkout in it.
export PHOTOSEARCH_CACHE="$WORK/cache" XDG_DATA_HOME="$WORK/data"
unset PHOTOSEARCH_LIBRARY PYTHONPATH
LIB="$WORK/library"
say "photosearch demo --batch"
"$WORK/venv/bin/photosearch" --library "$LIB" demo --batch -k 3 >"$WORK/demo.out" 2>"$WORK/demo.err" \
    || { cat "$WORK/demo.err" >&2; fail "photosearch demo --batch"; }
grep -q "^1\. .*/photosearch/examples/photos/images/.*(score: " "$WORK/demo.out" \
    || { cat "$WORK/demo.out" "$WORK/demo.err" >&2; fail "the demo printed no result from the bundled photos"; }
GRIDS=$(grep -c "^grid: " "$WORK/demo.out" || true)
[ "$GRIDS" -ge 1 ] && [ -s "$(grep -m1 '^grid: ' "$WORK/demo.out" | cut -c7-)" ] \
    || { cat "$WORK/demo.out" >&2; fail "the demo saved no result grid"; }

say "photosearch query \"a dog\""
"$WORK/venv/bin/photosearch" --library "$LIB" query -k 3 "a dog" >"$WORK/query.out" 2>"$WORK/query.err" \
    || { cat "$WORK/query.err" >&2; fail "photosearch query"; }
[ "$(grep -c '^[0-9]*\. /.* (score: ' "$WORK/query.out" || true)" -eq 3 ] \
    || { cat "$WORK/query.out" "$WORK/query.err" >&2; fail "photosearch query did not print 3 results"; }
head -n 3 "$WORK/query.out" >&2
say "passed: $(basename "$WHEEL") installs, runs the demo and answers a query without the checkout"
