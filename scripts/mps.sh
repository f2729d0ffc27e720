# NVIDIA's Multi-Process Service for one command's processes: without it, processes sharing a GPU
# take turns (time slices); with it, the kernels of a campaign's runs can run at the same time.
# Source this file, then `mps_start` (0 when the daemon runs) and `mps_stop`. The daemon and its
# clients meet in a private pipe folder; the GPU's compute mode is left as it is.
mps_start() {
    export CUDA_MPS_PIPE_DIRECTORY=${TMPDIR:-/tmp}/vae-mine-mps/pipe CUDA_MPS_LOG_DIRECTORY=${TMPDIR:-/tmp}/vae-mine-mps/log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d; then
        # a daemon that clients cannot reach (a container's IPC rules) would fail every run: try one
        if timeout 90 "${PYTHON:-python3}" -c "import torch; torch.ones(8, device='cuda').sum().item()"; then
            echo "MPS: daemon started ($CUDA_MPS_PIPE_DIRECTORY)"
            return 0
        fi
        echo quit | nvidia-cuda-mps-control
    fi
    echo "MPS: could not start the daemon; processes take turns on the GPU" >&2
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    return 1
}

mps_stop() {
    if [[ -n ${CUDA_MPS_PIPE_DIRECTORY:-} ]]; then
        echo quit | nvidia-cuda-mps-control
        echo "MPS: daemon stopped"
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    fi
}
