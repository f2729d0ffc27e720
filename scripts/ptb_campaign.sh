#!/usr/bin/env bash
# The paper-size PTB campaign (the paper's Table 2) on a lent GPU, in calls of at most 10 minutes:
#
#   VAE_MINE_DATA=.devcarry/data bash scripts/ptb_campaign.sh OUT_DIR [MINUTES [core.campaign run flags...]]
#
# Each call continues the runs in runs/ptb-campaign (kept between calls on the same warm machine),
# trains them side by side with CUDA-graphed TF32 steps, stops them MINUTES after it started
# (default 8.5: the pack and the lease's transfers fit in a 10-minute call) and packs the results
# into OUT_DIR (scripts/campaign_pack.py): 7 files of at most 8.5 MiB, within what a lease brings back (8 files, 64 MiB in all),
# with room for a log beside them. Exit status 3: not finished, call again; 0: done.
# Extra flags go to core.campaign run (e.g. --systems lagging,vae-mine to split the campaign over
# leases). What ran on an H200 in one call (docs/results-ptb.md):
#   MPS=1 VAE_MINE_DATA=.devcarry/data bash scripts/ptb_campaign.sh $OUT 8.0 --minutes 4.5 --eval-minutes 2.5
# MPS=1 runs it under NVIDIA's Multi-Process Service (bench/gpu.sh part `mps` measures
# whether that helps). Back on the CPU machine:
#   .venv/bin/python scripts/campaign_pack.py unpack FILES_AT runs/ptb-campaign
#   .venv/bin/python -m core.reproduce --checkpoints runs/ptb-campaign
set -u
out=${1:?usage: bash scripts/ptb_campaign.sh OUT_DIR [MINUTES [flags...]]}
minutes=${2:-8.5}
shift $(($# < 2 ? $# : 2))
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [[ ${MPS:-0} == 1 ]]; then  # MPS=1: the runs' kernels share the GPU at once (scripts/mps.sh)
    source "$(dirname "$0")/mps.sh"
    mps_start
    trap mps_stop EXIT
fi
"${PYTHON:-python3}" -m core.campaign run --corpus ptb --config paper --out runs/ptb-campaign --stop-after "$minutes" \
    --tf32 --checkpoint-minutes 2 --no-progress "$@"
status=$?
runs=runs/ptb-campaign; prev=
for a in "$@"; do [[ $prev == --out ]] && runs=$a; prev=$a; done  # a later --out wins, as in the campaign
"${PYTHON:-python3}" "$(dirname "$0")/campaign_pack.py" pack "$runs" "$out" --files 7 --mib 8.5 || exit $?
exit $status
