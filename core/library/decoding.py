"""Turning latent codes into word ids: greedy, sampling with temperature, and beam search.

All strategies decode every code of a batch at once; the only Python loop is over time steps.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .models import TextVAE, evaluating
from .vocab import Vocab


def _n_and_z(model: TextVAE, z: torch.Tensor | None, n: int | None) -> tuple[int, torch.Tensor | None]:
    if model.latent:
        return z.size(0), z
    return n, None


@torch.no_grad()
def step_decode(
    model: TextVAE,
    vocab: Vocab,
    z: torch.Tensor | None,
    max_len: int,
    temperature: float | None = None,
    generator: torch.Generator | None = None,
    n: int | None = None,
) -> list[list[int]]:
    """Greedy (temperature None) or sampled decoding; returns ids up to and without </s>.

    Finished sentences leave the batch, so the step cost follows the sentences still being written
    (sampled lengths have a long tail)."""
    n, z = _n_and_z(model, z, n)
    dec = model.decoder
    device = next(model.parameters()).device
    state = dec.initial_state(z)
    tokens = torch.full((n,), vocab.bos, dtype=torch.long, device=device)
    out = torch.full((n, max_len), vocab.eos, dtype=torch.long, device=device)
    alive = torch.arange(n, device=device)
    steps = 0
    for t in range(max_len):
        logp, state = dec.step(tokens, z, state)
        tokens = logp.argmax(-1) if temperature is None else sample_categorical(logp / temperature, generator)
        out[alive, t] = tokens
        steps = t + 1
        going = tokens != vocab.eos
        if not bool(going.all()):
            if not bool(going.any()):
                break
            alive, tokens = alive[going], tokens[going]
            z = z[going] if z is not None else None
            state = tuple(s[:, going] for s in state)
    return [_cut(seq, vocab.eos) for seq in out[:, :steps].tolist()]


def sample_categorical(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row from softmax(logits), by inverse CDF: on the CPU about 8x faster than
    torch.multinomial over a 10K vocabulary, and exact up to float rounding."""
    cdf = logits.softmax(-1).cumsum(-1)
    u = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.size(-1) - 1)


@torch.no_grad()
def beam_decode(
    model: TextVAE, vocab: Vocab, z: torch.Tensor | None, max_len: int, beam: int = 5, n: int | None = None
) -> list[list[int]]:
    """Beam search per code; the hypothesis with the highest total log-probability wins."""
    n, z = _n_and_z(model, z, n)
    dec = model.decoder
    device = next(model.parameters()).device
    zb = z.repeat_interleave(beam, 0) if z is not None else None
    state = dec.initial_state(zb)
    tokens = torch.full((n * beam,), vocab.bos, dtype=torch.long, device=device)
    scores = torch.full((n, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    finished = torch.zeros(n, beam, dtype=torch.bool, device=device)
    history = torch.empty(n, beam, 0, dtype=torch.long, device=device)
    for _ in range(max_len):
        logp, state = dec.step(tokens, zb, state)
        logp = logp.view(n, beam, -1)
        # A finished hypothesis may only repeat </s>, at no cost.
        done_row = torch.full_like(logp[0, 0], float("-inf"))
        done_row[vocab.eos] = 0.0
        logp = torch.where(finished.unsqueeze(-1), done_row, logp)
        v = logp.size(-1)
        top, idx = (scores.unsqueeze(-1) + logp).view(n, -1).topk(beam, dim=-1)
        origin, tokens2 = idx // v, idx % v
        scores = top
        history = torch.cat(
            [history.gather(1, origin.unsqueeze(-1).expand(-1, -1, history.size(-1))), tokens2.unsqueeze(-1)], -1
        )
        finished = finished.gather(1, origin) | (tokens2 == vocab.eos)
        flat = (origin + torch.arange(n, device=device).unsqueeze(1) * beam).view(-1)
        state = tuple(s[:, flat] for s in state)  # the LSTM always returns a state after a step
        tokens = tokens2.view(-1)
        if bool(finished.all()):
            break
    best = scores.argmax(-1)
    ids = history[torch.arange(n, device=device), best].tolist()
    return [_cut(seq, vocab.eos) for seq in ids]


def prior_samples(
    model: TextVAE,
    vocab: Vocab,
    n: int,
    batch_size: int = 1000,
    max_len: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> list[list[str]]:
    """n sentences from the model: z ~ N(0, I), then words sampled at temperature 1 (the language
    model samples directly). Repeatable for a seed; leaves the global RNG alone."""
    out: list[list[str]] = []
    with (
        evaluating(model, seed) as (device, gen),
        tqdm(total=n, desc="sampling from the prior", unit="sent", disable=not progress, leave=False) as bar,
    ):
        while len(out) < n:
            m = min(batch_size, n - len(out))
            z = torch.randn(m, model.z_dim, generator=gen, device=device) if model.latent else None
            out.extend(vocab.words(ids) for ids in step_decode(model, vocab, z, max_len, 1.0, gen, n=m))
            bar.update(m)
    return out


def _cut(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos)] if eos in ids else ids
