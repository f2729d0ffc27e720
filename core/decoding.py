"""Turning latent codes into word ids: greedy, sampling with temperature, and beam search.

All strategies decode every code of a batch at once; the only Python loop is over time steps.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .models import TextVAE
from .vocab import Vocab


def _n_and_z(model: TextVAE, z: torch.Tensor | None, n: int | None) -> tuple[int, torch.Tensor | None]:
    if model.latent:
        return z.size(0), z
    return n, None


@torch.no_grad()
def step_decode(
    model: TextVAE, vocab: Vocab, z: torch.Tensor | None, max_len: int, temperature: float | None = None,
    generator: torch.Generator | None = None, n: int | None = None,
) -> list[list[int]]:
    """Greedy (temperature None) or sampled decoding; returns ids up to and without </s>."""
    n, z = _n_and_z(model, z, n)
    dec = model.decoder
    device = next(model.parameters()).device
    state = dec.initial_state(z)
    tokens = torch.full((n,), vocab.bos, dtype=torch.long, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_len):
        logp, state = dec.step(tokens, z, state)
        if temperature is None:
            tokens = logp.argmax(-1)
        else:
            tokens = torch.multinomial((logp / temperature).softmax(-1), 1, generator=generator).squeeze(1)
        tokens = tokens.masked_fill(finished, vocab.eos)
        out.append(tokens)
        finished |= tokens == vocab.eos
        if bool(finished.all()):
            break
    ids = torch.stack(out, 1).tolist() if out else [[] for _ in range(n)]
    return [_cut(seq, vocab.eos) for seq in ids]


@torch.no_grad()
def beam_decode(model: TextVAE, vocab: Vocab, z: torch.Tensor | None, max_len: int, beam: int = 5, n: int | None = None) -> list[list[int]]:
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
        history = torch.cat([history.gather(1, origin.unsqueeze(-1).expand(-1, -1, history.size(-1))), tokens2.unsqueeze(-1)], -1)
        finished = finished.gather(1, origin) | (tokens2 == vocab.eos)
        flat = (origin + torch.arange(n, device=device).unsqueeze(1) * beam).view(-1)
        state = tuple(s[:, flat] for s in state)  # the LSTM always returns a state after a step
        tokens = tokens2.view(-1)
        if bool(finished.all()):
            break
    best = scores.argmax(-1)
    ids = history[torch.arange(n, device=device), best].tolist()
    return [_cut(seq, vocab.eos) for seq in ids]


@torch.no_grad()
def prior_samples(model: TextVAE, vocab: Vocab, n: int, batch_size: int = 1000, max_len: int = 100, seed: int = 0,
                  progress: bool = False) -> list[list[str]]:
    """n sentences from the model: z ~ N(0, I), then words sampled at temperature 1 (the language
    model samples directly). Repeatable for a seed; leaves the global RNG alone."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    out: list[list[str]] = []
    with tqdm(total=n, desc="sampling from the prior", unit="sent", disable=not progress, leave=False) as bar:
        while len(out) < n:
            m = min(batch_size, n - len(out))
            z = torch.randn(m, model.z_dim, generator=gen, device=device) if model.latent else None
            out.extend(vocab.words(ids) for ids in step_decode(model, vocab, z, max_len, 1.0, gen, n=m))
            bar.update(m)
    model.train(was_training)
    return out


def _cut(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos)] if eos in ids else ids
