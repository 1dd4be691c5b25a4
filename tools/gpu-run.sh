#!/usr/bin/env bash
# The GPU run in one command: tools/gpu-run.sh [OUTDIR]  (default $OUT, else gpu-run-out/)
#
# For a lent CUDA host (Python 3.12, torch, torchvision, numpy, matplotlib; no Sphinx, no
# network) with the repository copied over. Stages, each under its own `timeout`:
#   install  pip install --no-index the Sphinx-side wheels of MLA_WHEELS (default wheels/,
#            made by `nox -s gpu`), then the package with --no-deps: torch is never replaced
#   device   what torch sees (fails without CUDA, except in a dry run)
#   tests    pytest -m cuda if that marker exists, else MLA_GPU_RUN_TESTS (default the engine's
#            agreement tests and the device tests), with MLA_DEVICE=cuda; JUnit XML report
#   bench    python -m mla_course.bench --device cuda docs/_static/bench/cuda.json
#   book     the book at full settings, MLA_DEVICE=cuda MLA_CUDA_GRAPH=require, with the
#            sphinx-build arguments of `nox -s docs` (build_docs in noxfile.py)
# then it copies under OUTDIR the bench JSON, docs/sg_execution_times.rst, docs/claims.rst,
# two pages' HTML with their figures (MLA_GPU_RUN_PAGES), and gpu-run.log (each stage's wall
# time; each stage's output in logs/). A failed stage does not stop the later ones; the exit
# status is non-zero if any failed.
#
# Settings: MLA_GPU_RUN_STAGES (comma-separated, default all), MLA_GPU_RUN_TIMEOUT_<STAGE>
# (seconds), PYTHON (default python3), MLA_GPU_RUN_DRY=1: a rehearsal on a CPU machine
# (cuda -> cpu, require -> auto, pip --dry-run, the bench JSON written under OUTDIR only,
# MLA_QUICK=1 unless set).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
outdir=${1:-${OUT:-gpu-run-out}}
mkdir -p "$outdir/logs" && outdir=$(cd "$outdir" && pwd) || exit 2
export PY=${PYTHON:-python3} WHEELS=${MLA_WHEELS:-wheels} OUTDIR=$outdir
STAGES=${MLA_GPU_RUN_STAGES:-install,device,tests,bench,book}
export MLA_GPU_RUN_TESTS=${MLA_GPU_RUN_TESTS:-tests/test_engine.py tests/test_settings.py tests/test_bench.py}
export MLA_GPU_RUN_PAGES=${MLA_GPU_RUN_PAGES:-plot_03_question1_mnist plot_10_optimiser_comparison}
if [ "${MLA_GPU_RUN_DRY:-0}" = 1 ]; then
  export DEV=cpu GRAPH=auto PIP_DRY=--dry-run DRY=1 MLA_QUICK=${MLA_QUICK:-1}
  export BENCH_JSON=$outdir/bench-cpu.json  # a rehearsal leaves the tree as it found it
else
  export DEV=cuda GRAPH=require PIP_DRY= DRY=0 MLA_QUICK=${MLA_QUICK:-0}
  export BENCH_JSON=$ROOT/docs/_static/bench/cuda.json
fi
# Data: MLA_DATA_DIR, else what `nox -s gpu` put in gpu-data/, else the shared mirror.
for d in "${MLA_DATA_DIR:-}" gpu-data/mnist ../shared/data/mnist shared/data/mnist; do
  [ -n "$d" ] && [ -d "$d" ] && { export MLA_DATA_DIR=$(cd "$d" && pwd); break; }
done
[ -z "${MLA_FASHION_DATA_DIR:-}" ] && [ -d gpu-data/fashion-mnist ] &&
  export MLA_FASHION_DATA_DIR=$ROOT/gpu-data/fashion-mnist
export MLA_CACHE_DIR=${MLA_CACHE_DIR:-$ROOT/.cache/mla_course}
export MPLBACKEND=agg OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MLA_PROGRESS=0
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1

stage_install() {
  ls "$WHEELS"/*.whl 2>/dev/null | wc -l | xargs echo "wheels in $WHEELS:"
  local user=() reqs
  "$PY" -c 'import os,sysconfig,sys; sys.exit(not os.access(sysconfig.get_paths()["purelib"], os.W_OK))' ||
    user=(--user)
  # The docs group of pyproject.toml, and pytest: the one list of what the book needs.
  reqs=$("$PY" -c 'import tomllib; g = tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]
print("\n".join(g["docs"] + [r for r in g["test"] if r.startswith("pytest")]))') || return 1
  local torch_before torch_after
  torch_before=$("$PY" -c 'import torch; print(torch.__version__, torch.__file__)') || return 1
  mapfile -t reqs <<<"$reqs"
  "$PY" -m pip install $PIP_DRY "${user[@]}" --no-index --find-links "$WHEELS" "${reqs[@]}" || return 1
  "$PY" -m pip install $PIP_DRY "${user[@]}" --no-index --no-deps --no-build-isolation -e . || return 1
  torch_after=$("$PY" -c 'import torch; print(torch.__version__, torch.__file__)')
  echo "torch: $torch_after"
  [ "$torch_before" = "$torch_after" ] || { echo "torch changed: was $torch_before"; return 1; }
  "$PY" -c 'import sphinx, sphinx_gallery, myst_parser, pytest, mla_course; print("sphinx", sphinx.__version__)'
}
stage_device() {
  "$PY" - <<'PY'
import os, sys, torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(0), "count:", torch.cuda.device_count())
sys.exit(0 if torch.cuda.is_available() or os.environ["DRY"] == "1" else 1)
PY
}
stage_tests() {
  local sel
  if "$PY" -m pytest --markers 2>/dev/null | grep -q '^@pytest.mark.cuda:'; then sel=(-m cuda)
  else read -ra sel <<<"$MLA_GPU_RUN_TESTS"; fi
  echo "selection: ${sel[*]}"
  MLA_DEVICE=$DEV "$PY" -m pytest -q -rs -p no:cacheprovider --junitxml="$OUTDIR/pytest.xml" "${sel[@]}"
  local rc=$?
  # On a GPU a test skipped for want of CUDA is a failure of this run.
  [ "$DRY" = 1 ] || ! grep -q 'needs a CUDA GPU' "$OUTDIR/pytest.xml" ||
    { echo "tests skipped for want of CUDA"; rc=1; }
  return $rc
}
stage_bench() {
  MLA_NO_CACHE=1 "$PY" -m mla_course.bench --device "$DEV" "$BENCH_JSON"
}
stage_book() {
  rm -rf docs/_build docs/auto_examples docs/gen_modules docs/api  # GENERATED in noxfile.py
  # The arguments of build_docs in noxfile.py (python -m sphinx is sphinx-build).
  MLA_DEVICE=$DEV MLA_CUDA_GRAPH=$GRAPH "$PY" -m sphinx -W --keep-going -b html docs docs/_build/html
}
stage_collect() {
  [ -f "$BENCH_JSON" ] && cp "$BENCH_JSON" "$OUTDIR/"
  for f in docs/sg_execution_times.rst docs/claims.rst; do [ -f "$f" ] && cp "$f" "$OUTDIR/"; done
  "$PY" - <<'PY'
import os, re, shutil
from pathlib import Path
html, out = Path("docs/_build/html"), Path(os.environ["OUTDIR"]) / "html"
for name in os.environ["MLA_GPU_RUN_PAGES"].split():
    for page in html.glob(f"auto_examples/**/{name}.html"):
        for rel in [page.relative_to(html)] + [
            Path(os.path.normpath(page.parent.relative_to(html) / src))
            for src in re.findall(r'<img[^>]*\bsrc="([^"#?:]+)"', page.read_text())
        ]:
            if (html / rel).is_file():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(html / rel, out / rel)
                print("copied", rel)
PY
}
export -f stage_install stage_device stage_tests stage_bench stage_book stage_collect

declare -A LIMIT=([install]=180 [device]=60 [tests]=240 [bench]=300 [book]=540 [collect]=60)
log=$OUTDIR/gpu-run.log
: >"$log"
echo "gpu-run: stages $STAGES, device $DEV, MLA_QUICK=$MLA_QUICK, into $OUTDIR" | tee -a "$log"
failed=() passed=()
for name in install device tests bench book collect; do
  [ "$name" = collect ] || [[ ",$STAGES," == *",$name,"* ]] ||
    { echo "$name: skipped" | tee -a "$log"; continue; }
  var=MLA_GPU_RUN_TIMEOUT_${name^^}
  limit=${!var:-${LIMIT[$name]}}
  t0=$(date +%s.%N)
  timeout --kill-after=15 "$limit" bash -c "stage_$name" >"$OUTDIR/logs/$name.log" 2>&1
  rc=$?
  dt=$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || "$PY" -c "print($(date +%s.%N) - $t0)")
  if [ $rc = 0 ]; then status=passed; passed+=("$name"); else
    status="FAILED (exit $rc$([ $rc -ge 124 ] && echo ", time limit ${limit} s?"))"; failed+=("$name")
    tail -n 15 "$OUTDIR/logs/$name.log"; fi
  printf '%s: %s in %.1f s (limit %s s)\n' "$name" "$status" "$dt" "$limit" | tee -a "$log"
done
echo "passed: ${passed[*]:-none}; failed: ${failed[*]:-none}" | tee -a "$log"
[ ${#failed[@]} = 0 ]
