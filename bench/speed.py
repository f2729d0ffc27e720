"""Training tokens/s, evaluation sentences/s and importance-weighted NLL seconds per sentence on
this machine, with the machine's float32 matrix-product rate measured in the same run (compare
figures from different machines or days as ratios to it), printed as JSON.

    VAE_MINE_DATA=../shared/data .venv/bin/python -m bench.speed [--parts train,eval,iw]
        [--iw-samples 500] [--iw-sentences 200] [--device cpu] [--steps graphed,eager] [--tf32]
        [--precisions fp32,bf16] [--out bench/results/cpu.json]

Training and evaluation figures are medians over several timed windows after warm-up, on the
first PTB training sentences (real text, real vocabulary of the whole training split), fresh
weights. `bucketed_speedup` compares our length-bucketed batches with batches of random sentences
in the same run. On CUDA, training is timed with graphed steps (core/library/graphs.py) and with eager
ones: the first kind `--steps` names (graphed by default) under the plain keys, the others with
their kind added (`train_tokens_per_s_eager`). The IW-NLL figure is core.evaluate's (batch 64) at
paper size on the first --iw-sentences PTB test sentences, with the work it does in GFLOP (the
decoder's matrix products).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from bench import fresh_training, report
from core.library.batching import Batch, Dataset, on_device
from core.library.config import PRESETS, ModelConfig, RunConfig
from core.library.corpora import read_split
from core.library.device import keep_freed_memory, pick_device, set_tf32
from core.library.evaluation import evaluate_split
from core.library.graphs import StepGraphs
from core.library.models import Decoder
from core.library.objectives import StepContext, build, objective_class
from core.library.vocab import Vocab

FALLBACKS: list[str] = []  # graphed steps that ran eagerly (a capture failed)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def prepared_steps(
    config: str,
    objective: str,
    data: Dataset,
    device,
    bucketed: bool = True,
    graphed: bool = False,
    precision: str = "fp32",
) -> tuple[Callable[[Batch], object], list[Batch]]:
    """A fresh model's training step and the batches of `data` on `device`, warmed up: graphed
    steps (core/library/graphs.py) on every batch, so each shape is captured before anything is timed."""
    model, obj, opts = fresh_training(config, objective, {}, len(data.vocab), device)
    if bucketed:
        batches = list(data.batches(32, torch.Generator().manual_seed(0)))
    else:
        batches = [
            data.batch(idx) for idx in torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).split(32)
        ]
    batches = on_device(batches, device)
    ctx = StepContext(
        opts, 5.0, None, StepGraphs(model, obj, opts, 5.0, precision=precision) if graphed else None, precision
    )
    for b in batches if graphed else batches[:3]:
        obj.train_step(model, b, ctx)
    if graphed and ctx.graphs.eager:  # reported with the figures
        FALLBACKS.append(
            f"{config}/{objective}: {len(ctx.graphs.eager)} shapes eager, e.g. {next(iter(ctx.graphs.eager.values()))}"
        )
    return partial(obj.train_step, model, ctx=ctx), batches


def train_speed(
    config: str,
    objective: str,
    data: Dataset,
    device,
    bucketed: bool = True,
    windows: int = 5,
    steps: int = 8,
    graphed: bool = False,
    precision: str = "fp32",
) -> float:
    """Median tokens/s of training steps over `windows` windows of `steps` steps, after warm-up."""
    step, batches = prepared_steps(config, objective, data, device, bucketed, graphed, precision)
    rates, i = [], 3
    for _ in range(windows):
        chunk = [batches[(i + k) % len(batches)] for k in range(steps)]
        i += steps
        sync(device)
        t = time.perf_counter()
        for b in chunk:
            step(b)
        sync(device)
        rates.append(sum(b.n_tokens for b in chunk) / (time.perf_counter() - t))
    return round(statistics.median(rates), 1)


def eval_speed(config: str, data: Dataset, device, iw_samples: int, repeats: int = 3, precision: str = "fp32") -> float:
    torch.manual_seed(0)
    model, _ = build(RunConfig(model=PRESETS[config], objective=objective_class("vae").config()), len(data.vocab))
    model.to(device).eval()
    times = []
    for r in range(repeats):
        sync(device)
        t = time.perf_counter()
        evaluate_split(model, data, batch_size=64, iw_samples=iw_samples, seed=r, precision=precision)
        sync(device)
        times.append(time.perf_counter() - t)
    return round(len(data) / statistics.median(times), 1)


def cpu_name() -> str:
    try:
        return next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def matmul_gflops(
    device,
    size: int = 4096,
    repeats: int = 5,
    shape: tuple[int, int, int] | None = None,
    dtype: torch.dtype = torch.float32,
) -> float:
    """The rate of a matrix product (median of `repeats`), the yardstick for the rest: square of
    `size` by default, or [m, k] @ [k, n] for shape (m, k, n), in `dtype`."""
    m, k, n = shape or (size, size, size)
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    a @ b
    rates = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        rates.append(2 * m * k * n / (time.perf_counter() - t) / 1e9)
    return round(statistics.median(rates), 1)


def iw_speed(sentences: list, vocab: Vocab, device, samples: int, precision: str = "fp32") -> dict:
    """Seconds per sentence of core.evaluate's IW-NLL at paper size (one timed pass) and the
    decoder's matrix-product work per sentence (the output layer at its padded width, as it runs)."""
    mc, data = PRESETS["paper"], Dataset(sentences, vocab)
    torch.manual_seed(0)
    model, _ = build(RunConfig(model=mc, objective=objective_class("vae").config()), len(vocab))
    model.to(device).eval()
    evaluate_split(model, Dataset(sentences[:4], vocab), batch_size=64, iw_samples=4, precision=precision)  # warm-up
    sync(device)
    t = time.perf_counter()
    evaluate_split(model, data, batch_size=64, iw_samples=samples, seed=0, precision=precision)
    sync(device)
    seconds = (time.perf_counter() - t) / len(data)
    work = forward_flops(mc, len(data.vocab), encoder=False) * samples * data.n_tokens / len(data) / 1e9
    return {
        "config": "paper",
        "samples": samples,
        "sentences": len(data),
        "seconds_per_sentence": round(seconds, 3),
        "gflop_per_sentence": round(work, 1),
        "gflops_achieved": round(work / seconds, 1),
    }


def forward_flops(mc: ModelConfig, vocab_size: int, encoder: bool) -> int:
    """Matrix-product FLOPs of one word position's forward pass: the decoder's LSTM (input: word
    embedding and z) and output layer at its padded width, and with `encoder` the encoder's LSTM."""
    h, e = mc.hidden_dim, mc.emb_dim
    lstms = 4 * h * (e + mc.z_dim + h) + (4 * h * (e + h) if encoder else 0)
    return 2 * (lstms + h * Decoder.padded_width(vocab_size))


def train_work(tokens_per_s: float, vocab_size: int, matmul_rate: float) -> dict:
    """The matrix-product work of a paper-size VAE training step per target token (the encoder's
    and decoder's LSTM and the output layer, forward and twice that backward), and the rate it
    reaches as a share of the square matrix product's: how much a faster step could still gain."""
    forward = forward_flops(PRESETS["paper"], vocab_size, encoder=True)
    gflops = 3 * forward * tokens_per_s / 1e9
    return {
        "mflop_per_token": round(3 * forward / 1e6, 1),
        "gflops_achieved": round(gflops, 1),
        "share_of_matmul_rate": round(gflops / matmul_rate, 3),
    }


# the shapes of the project's largest products: the paper-size output layer (a batch of 32 sentences
# of 20 words against PTB's padded 10,048 words) and a paper-size LSTM's input-to-gates product
GEMM_SHAPES = {"output layer 640x512x10048": (640, 512, 10_048), "LSTM gates 640x704x2048": (640, 704, 2048)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def measure(
    args,
    parts: set[str],
    kinds: list[str],
    device,
    vocab: Vocab,
    train_data: Dataset,
    valid: list,
    precision: str,
    matmul_rate: float,
) -> dict:
    """Every asked-for figure at one precision (core.library.precision), with the GEMM rate of the project's
    shapes in that precision's type."""
    result: dict = {
        "gemm_gflops": {
            name: matmul_gflops(device, shape=shape, dtype=DTYPES[precision]) for name, shape in GEMM_SHAPES.items()
        }
    }
    for kind in kinds if "train" in parts else ():
        # the first kind's figures under the plain keys, the others' with the kind added
        graphed, suffix = kind == "graphed", "" if kind == kinds[0] else f"_{kind}"
        steps = 8 if device.type == "cpu" else 50  # on a GPU a window of 8 steps lasts milliseconds
        figures = result[f"train_tokens_per_s{suffix}"] = {}
        for config in ("paper", "small"):
            for objective in ("vae", "vae-mine"):
                figures[f"{config}/{objective}"] = train_speed(
                    config, objective, train_data, device, steps=steps, graphed=graphed, precision=precision
                )
        unbucketed = train_speed(
            "paper", "vae", train_data, device, bucketed=False, steps=steps, graphed=graphed, precision=precision
        )
        figures["paper/vae, random batches (no bucketing)"] = unbucketed
        result[f"bucketed_speedup_paper_vae{suffix}"] = round(figures["paper/vae"] / unbucketed, 2)
        result[f"train_paper_vae_work{suffix}"] = train_work(figures["paper/vae"], len(vocab), matmul_rate)
        result[f"train_paper_vae_share_of_gemm{suffix}"] = round(
            result[f"train_paper_vae_work{suffix}"]["gflops_achieved"] / max(result["gemm_gflops"].values()), 3
        )
    if "eval" in parts:
        result["eval_sentences_per_s"] = {
            "small, ELBO + MI + AU (PTB valid, 500 sentences)": eval_speed(
                "small", Dataset(valid[:500], vocab), device, 0, precision=precision
            ),
            "small, IW-NLL with 50 samples (PTB valid, 100 sentences)": eval_speed(
                "small", Dataset(valid[:100], vocab), device, 50, repeats=2, precision=precision
            ),
            "paper, ELBO + MI + AU (PTB valid, 500 sentences)": eval_speed(
                "paper", Dataset(valid[:500], vocab), device, 0, precision=precision
            ),
        }
    if "iw" in parts:
        test = read_split("ptb", "test", args.data_dir, args.iw_sentences)
        result["iw_nll"] = iw_speed(test, vocab, device, args.iw_samples, precision)
        result["iw_nll"]["share_of_gemm"] = round(
            result["iw_nll"]["gflops_achieved"] / result["gemm_gflops"]["output layer 640x512x10048"], 3
        )
    return result


def mean_figures(rounds: list[dict]):
    """The mean of each number over rounds of the same figures (nested dicts kept)."""
    first = rounds[0]
    if isinstance(first, dict):
        return {k: mean_figures([r[k] for r in rounds]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return round(statistics.mean(rounds), 3)
    return first


def ratios(a, b):
    """a / b for each number of two figure sets (nested dicts kept)."""
    if isinstance(a, dict):
        return {k: ratios(a[k], b[k]) for k in a if k in b}
    if isinstance(a, (int, float)) and not isinstance(a, bool) and b:
        return round(a / b, 2)
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.add_argument("--parts", default="train,eval,iw", help="which figures: train, eval, iw (comma-separated)")
    p.add_argument("--iw-samples", type=int, default=500)
    p.add_argument("--iw-sentences", type=int, default=200, help="the first N PTB test sentences")
    p.add_argument(
        "--steps", help="training steps to time: eager, graphed or both (default: both on CUDA, eager elsewhere)"
    )
    p.add_argument("--tf32", action="store_true", help="on CUDA, TF32 matrix products (default: full float32)")
    p.add_argument(
        "--precisions",
        default="fp32",
        help="fp32, bf16, or both comma-separated: each figure in each, alternating (core.library.precision)",
    )
    args = p.parse_args()
    parts = set(args.parts.split(","))
    device = pick_device(args.device)
    kinds = (args.steps or ("graphed,eager" if device.type == "cuda" else "eager")).split(",")
    if not set(kinds) <= {"graphed", "eager"} or ("graphed" in kinds and device.type != "cuda"):
        p.error(f"--steps takes eager and graphed (graphed on CUDA only), not {args.steps!r} on {device.type}")
    if device.type == "cuda":
        set_tf32(args.tf32)
    kept = keep_freed_memory()  # as every core command does (core.commands.cli)
    train_all = read_split("ptb", "train", args.data_dir)
    vocab = Vocab.build(train_all)
    train_data = Dataset(train_all[:4000], vocab)
    valid = read_split("ptb", "valid", args.data_dir)
    result = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "tf32": args.tf32 and device.type == "cuda",
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "freed_memory_kept": kept,
        "batch_size": 32,
        "vocab": len(vocab),
        "matmul_gflops_float32": matmul_gflops(device),
    }
    if "train" in parts:
        result["train_steps"] = kinds
    precisions = args.precisions.split(",")
    if len(precisions) == 1:
        result["precision"] = precisions[0]
        result |= measure(
            args, parts, kinds, device, vocab, train_data, valid, precisions[0], result["matmul_gflops_float32"]
        )
    else:  # alternating, a, b, b, a: the host's rate drifts within minutes
        rounds: dict[str, list[dict]] = {p: [] for p in precisions}
        for p in [*precisions, *reversed(precisions)]:
            print(f"[bench.speed] {p}", file=sys.stderr)
            rounds[p].append(
                measure(args, parts, kinds, device, vocab, train_data, valid, p, result["matmul_gflops_float32"])
            )
        result["by_precision"] = {p: mean_figures(r) for p, r in rounds.items()}
        result["rounds"] = rounds
        first = precisions[0]
        result["speedup_over_" + first] = {
            p: ratios(result["by_precision"][p], result["by_precision"][first]) for p in precisions[1:]
        }
    if FALLBACKS:
        result["graphed_steps_run_eagerly"] = FALLBACKS
    result["matmul_gflops_float32_after"] = matmul_gflops(device)
    report(result, args.out)


if __name__ == "__main__":
    main()
