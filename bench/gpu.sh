#!/usr/bin/env bash
# The GPU checks of the graphed training step (core/library/graphs.py), in one call of a few minutes:
#   1. bench.graphs: every objective, 10 graphed against 10 eager steps, full float32 (no TF32);
#   2. bench.speed: training tokens/s, graphed and eager steps, float32; then graphed with TF32;
#   3. one epoch of VAE-MINE on 10,000 PTB sentences, float32 and TF32 (what TF32 changes);
#   4. bench.side_by_side: 1, 2, 4 and 8 graphed VAE-MINE runs at once, in separate processes, TF32;
#      part `mps`: the same under NVIDIA's Multi-Process Service (kernels of several processes at once);
#   5. one aggressive LaggingVAE epoch on the whole of PTB (LAGGING_ARGS adds flags, e.g. --tf32).
#
#   VAE_MINE_DATA=path/with/ptb [PARTS=check,speed,tf32,short,sidebyside,mps,lagging] [SECONDS_LEFT=570] bash bench/gpu.sh OUT_DIR
#
# PARTS picks what runs; no part starts, and none runs on, past SECONDS_LEFT seconds from the start
# (a lease's command has a limit). Writes at most eight files to OUT_DIR (the device tool brings
# back eight at most) and prints a summary.
set -u
out=${1:?usage: bash bench/gpu.sh OUT_DIR}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
runs=${TMPDIR:-/tmp}/vae-mine-gpu-runs
rm -rf "$runs"

parts=,${PARTS:-check,speed,tf32,short,sidebyside,lagging},
deadline=$(($(date +%s) + ${SECONDS_LEFT:-570} - 15))

step() {  # step NAME SECONDS command...: run it with a time limit, its output in log.txt
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    if ((deadline - start < limit)); then limit=$((deadline - start)); fi
    if ((limit < 20)); then echo "$name: skipped, no time left" | tee -a "$out/log.txt"; return; fi
    echo "== $name: $*" >>"$out/log.txt"
    timeout "$limit" "$@" >>"$out/log.txt" 2>>"${err:-$out/log.txt}"
    rc=$?
    echo "$name: exit $rc after $(($(date +%s) - start)) s" | tee -a "$out/log.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$out/log.txt"

[[ $parts == *,check,* ]] && step check 120 $py -m bench.graphs --device cuda --config paper --out "$out/graphs.json"
[[ $parts == *,speed,* ]] && step speed 180 $py -m bench.speed --device cuda --parts train --out "$out/speed.json"
[[ $parts == *,tf32,* ]] && step speed-tf32 90 $py -m bench.speed --device cuda --parts train --steps graphed --tf32 \
    --out "$out/speed-tf32.json"
for tf32 in "" --tf32; do
    [[ $parts == *,short,* ]] && step "short-run${tf32:+-tf32}" 90 $py -m core.train --model vae-mine --corpus ptb --epochs 1 \
        --max-train 10000 --no-progress $tf32 --out "$runs/short${tf32:+-tf32}"
done
[[ $parts == *,sidebyside,* ]] && step side-by-side 150 $py -m bench.side_by_side --device cuda --tf32 \
    --out "$out/side-by-side.json"
if [[ $parts == *,mps,* ]]; then
    source "$(dirname "$0")/../scripts/mps.sh"
    mps_start && step side-by-side-mps 150 $py -m bench.side_by_side --device cuda --tf32 --out "$out/side-by-side-mps.json"
    mps_stop
fi
[[ $parts == *,lagging,* ]] && err=$out/lagging-progress.txt step lagging 600 $py -m core.train --model lagging --corpus ptb \
    --epochs 1 --out "$runs/lagging" --checkpoint-minutes 0 ${LAGGING_ARGS:-}

for run in "$runs"/*; do
    echo "== $(basename "$run")"
    cat "$run/train_log.jsonl" 2>/dev/null
    cat "$run/metrics.json" 2>/dev/null
done >"$out/runs.txt"
$py - "$out" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return {}
g = load("graphs.json")
print("check (float32):", {k: (f"{c['max_rel_loss_diff']:.1e}", f"{c['max_rel_param_diff']:.1e}", c["graphs_failed"])
                           for k, c in g.get("cases", {}).items()})
for name in ("speed.json", "speed-tf32.json"):
    s = load(name)
    for key in ("train_tokens_per_s", "train_tokens_per_s_eager"):
        if key in s:
            print(name, key, s[key])
for name in ("side-by-side.json", "side-by-side-mps.json"):
    for row in load(name).get("side_by_side", []):
        print(name, row)
EOF
[[ -f $out/lagging-progress.txt ]] && tail -c 600 "$out/lagging-progress.txt" | tr '\r' '\n' | tail -2
