#!/usr/bin/env bash
# GPU figures in one go: the throughput benchmark (compiled and eager), a full default MNIST
# training, and the render stage; figures, GIFs and logs land in $OUT.
#
#   OUT=/tmp/gpu_figures benchmarks/gpu_check.sh
#
# Run it from the repository root, in the project's environment (`pip install -e .` or the Docker
# image), with the four MNIST .gz files in data/raw/mnist (or RAW_DIR): nothing is downloaded.
# The repository is left as it was: the run's prepared data, model, reports, media and MLflow store
# go to a scratch folder. It runs on any machine, so CPU tests can run it small:
#   PARAMS       params file of the training (default params.yaml)
#   BENCH_ARGS   extra flags for benchmarks/train_throughput.py (e.g. "--steps 4 --warmup 1")
#
# $OUT receives (flat, 8 files at most): summary.txt (machine, versions, wall times, metrics),
# benchmark.txt and benchmark_eager.txt (the benchmark with train.compile's default, then without
# torch.compile), train.log, render.log, metrics.json, train_history.csv, and media.tar (the GIFs
# and contact sheets).
set -euo pipefail

out=${OUT:?set OUT to the folder for the results}
params=$(realpath "${PARAMS:-params.yaml}")
raw=$(realpath "${RAW_DIR:-data/raw/mnist}")
bench_args=${BENCH_ARGS:-}
dataset=mnist
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export MLFLOW_TRACKING_URI="sqlite:///$scratch/mlflow.db" PYTHONUNBUFFERED=1
# the same params with the MLflow artifacts in the scratch folder too
python - "$params" "$scratch" <<'PY'
import sys, yaml
params = yaml.safe_load(open(sys.argv[1]))
params["tracking"]["artifact_root"] = f"{sys.argv[2]}/mlartifacts"
yaml.safe_dump(params, open(f"{sys.argv[2]}/params.yaml", "w"), sort_keys=False)
PY
params="$scratch/params.yaml"

summary="$out/summary.txt"
{
    echo "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    python -c 'import torch, pytorch_lightning as pl; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, lightning {pl.__version__}, cuda available: {torch.cuda.is_available()}")'
    echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
} > "$summary"

timed() {  # timed NAME LOG COMMAND...: run COMMAND with its output in LOG, its wall time in the summary
    local name=$1 log=$2 start
    shift 2
    start=$(date +%s)
    if ! "$@" > "$log" 2>&1; then
        echo "$name FAILED after $(( $(date +%s) - start )) s; the end of $log:" | tee -a "$summary"
        tail -n 40 "$log"
        exit 1
    fi
    echo "$name: $(( $(date +%s) - start )) s" >> "$summary"
}

# shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
timed "benchmark (compile: auto)" "$out/benchmark.txt" \
    python benchmarks/train_throughput.py --raw-dir "$raw" $bench_args
# shellcheck disable=SC2086
timed "benchmark (compile: false)" "$out/benchmark_eager.txt" \
    python benchmarks/train_throughput.py --raw-dir "$raw" --compile false $bench_args

# the four stages as dvc.yaml runs them, on scratch paths (the raw data folder holds mnist/)
mkdir -p "$scratch/raw/$dataset"
cp "$raw"/*.gz "$scratch/raw/$dataset/"
timed "verify" "$scratch/verify.log" \
    python -m pipeline.verify --dataset "$dataset" --params "$params" --raw-dir "$scratch/raw" \
    --out "$scratch/verified.json"
timed "prepare" "$scratch/prepare.log" \
    python -m pipeline.prepare --dataset "$dataset" --params "$params" --raw-dir "$scratch/raw" \
    --out-dir "$scratch/prepared"
# the train stage's command as pipeline/stage.py builds it, with its outputs under $scratch/run
mapfile -t train_command < <(python -c 'import sys; from pathlib import Path; from pipeline.stage import train_command
print("\n".join(train_command(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))))' \
    "$dataset" "$params" "$scratch/prepared" "$scratch/run")
timed "train" "$out/train.log" "${train_command[@]}"
cp "$scratch/run/history.csv" "$out/train_history.csv"
timed "render" "$out/render.log" \
    python -m pipeline.render --dataset "$dataset" --params "$params" --model "$scratch/run/model" \
    --data "$scratch/prepared" --media "$scratch/media" --metrics "$out/metrics.json" \
    --history "$scratch/run/history.csv"
tar -cf "$out/media.tar" -C "$scratch" media

{
    grep -E "^(baseline|ours) +median|^ratio" "$out/benchmark.txt" | sed 's/^/compile auto:  /'
    grep -E "^(baseline|ours) +median|^ratio" "$out/benchmark_eager.txt" | sed 's/^/compile false: /'
    tail -n 1 "$out/train.log"
    python -c 'import json, sys; m = json.load(open(sys.argv[1])); print("metrics:", ", ".join(f"{k} {v:.4g}" for k, v in m.items() if not isinstance(v, (dict, list))))' "$out/metrics.json"
} >> "$summary"
cat "$summary"
