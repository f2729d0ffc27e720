"""Sentences to padded id tensors, in length-bucketed batches so padding stays small."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from .vocab import Vocab


@dataclass
class Batch:
    """`tokens` is `<s> w1 .. wT </s>` padded on the right; `lengths` counts <s> and </s>."""

    tokens: torch.Tensor  # [B, L] long
    lengths: torch.Tensor  # [B] long, on the CPU (pack_padded_sequence wants that)
    index: torch.Tensor  # [B] positions of these sentences in the dataset
    device_lengths: torch.Tensor | None = None  # `lengths` on the GPU the tokens are on, where on_device moved them

    @property
    def inputs(self) -> torch.Tensor:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> torch.Tensor:
        return self.tokens[:, 1:]

    @property
    def n_tokens(self) -> int:
        """Predicted tokens: the words and </s>, not <s>."""
        return int(self.lengths.sum()) - len(self.lengths)

    def __len__(self) -> int:
        return self.tokens.size(0)

    def to(self, device: torch.device | str) -> Batch:
        moved = None if self.device_lengths is None else self.device_lengths.to(device, non_blocking=True)
        return Batch(self.tokens.to(device, non_blocking=True), self.lengths, self.index, moved)


def on_device(batches: Iterable[Batch], device: torch.device) -> Iterable[Batch]:
    """The batches with their tokens, and a copy of their lengths, on a CUDA `device`, moved in one
    transfer from pinned memory, as a list (on the CPU: `batches` as they are, a list or a lazy
    iterator). A copy from pageable memory to a GPU first
    waits until the GPU has finished its queued work, so moving each batch as its step comes would
    stall every step; from pinned memory the copy joins the queue and nothing waits."""
    if device.type == "cpu":
        return batches
    batches = list(batches)
    if not batches:
        return batches
    flat = torch.cat([t for b in batches for t in (b.tokens.reshape(-1), b.lengths)])
    flat = flat.pin_memory().to(device, non_blocking=True)
    out, at = [], 0
    for b in batches:
        n = b.tokens.numel()
        tokens, lengths = flat[at : at + n].view(b.tokens.shape), flat[at + n : at + n + len(b)]
        out.append(Batch(tokens, b.lengths, b.index, lengths))
        at += n + len(b)
    return out


class Dataset:
    """All sentences of a split as one padded id matrix; batches are row slices of it."""

    def __init__(self, sentences: Sequence[Sequence[str]], vocab: Vocab):
        self.vocab = vocab
        lengths = [len(s) + 2 for s in sentences]
        width = max(lengths, default=2)
        tokens = torch.full((len(sentences), width), vocab.pad, dtype=torch.long)
        for i, s in enumerate(sentences):
            tokens[i, : lengths[i]] = torch.tensor([vocab.bos, *vocab.ids(s), vocab.eos])
        self.tokens = tokens
        self.lengths = torch.tensor(lengths, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum()) - len(self)

    def batch(self, index: torch.Tensor) -> Batch:
        lengths = self.lengths[index]
        return Batch(self.tokens[index, : int(lengths.max())], lengths, index)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Length-bucketed batches. With a generator: shuffled ties and batch order (training);
        without: sorted by length, a fixed order (evaluation)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        order = order[torch.sort(self.lengths[order], stable=True).indices]
        chunks = list(torch.split(order, batch_size))
        if generator is not None:
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
        for idx in chunks:
            yield self.batch(idx)
