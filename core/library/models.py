"""The paper's LSTM VAE: encoder, decoder (z fed at every step), and the language model without z."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .batching import Batch
from .config import DROPOUT_MASKS, ModelConfig
from .errors import SettingError

LOG_2PI = math.log(2 * math.pi)


class Encoder(nn.Module):
    """Embedding + LSTM; the last hidden state is mapped to (mu, logvar)."""

    def __init__(self, vocab_size: int, mc: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, mc.emb_dim)
        self.lstm = nn.LSTM(mc.emb_dim, mc.hidden_dim, batch_first=True)
        self.to_gaussian = nn.Linear(mc.hidden_dim, 2 * mc.z_dim, bias=mc.layer_biases)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (h_x, mu, logvar). Padding is on the right, so the state at each sentence's
        last token is exact without packing."""
        out, _ = self.lstm(self.embed(tokens))
        last = (lengths - 1).to(out.device)
        h = out[torch.arange(out.size(0), device=out.device), last]
        # the posterior in float32 under any precision: KL, sampling and the MI estimators read it
        mu, logvar = self.to_gaussian(h).float().chunk(2, dim=-1)
        return h, mu, logvar


class Dropout(nn.Module):
    """Inverted dropout with a choice of how masks are drawn. "uniform" keeps a unit where a U(0, 1)
    draw is >= p: on the CPU that takes a quarter of the time of torch's bernoulli_ (1.4 ms against
    6.0 ms for a paper-size decoder's outputs at 2 threads), 2 % of a training step. "bernoulli" is
    nn.Dropout, what runs from before the choice existed trained with, so they resume exactly."""

    def __init__(self, p: float, masks: str = "uniform"):
        super().__init__()
        if not 0 <= p <= 1:
            raise SettingError(f"dropout must be between 0 and 1, not {p}")
        if masks not in DROPOUT_MASKS:
            raise SettingError(f"dropout masks must be one of {DROPOUT_MASKS}, not {masks!r}")
        self.p, self.masks = p, masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.masks == "bernoulli" or self.p == 1:
            return F.dropout(x, self.p, True)
        return x * torch.rand_like(x).ge_(self.p).div_(1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, masks={self.masks}"


class Decoder(nn.Module):
    """LSTM decoder; with z_dim > 0, z is concatenated to every input and sets the initial state
    (c0 = Linear(z), h0 = tanh(c0), as in He et al.'s code). With z_dim == 0 it is a plain LM."""

    def __init__(self, vocab_size: int, mc: ModelConfig, z_dim: int):
        super().__init__()
        self.z_dim = z_dim
        self.embed = nn.Embedding(vocab_size, mc.emb_dim)
        self.lstm = nn.LSTM(mc.emb_dim + z_dim, mc.hidden_dim, batch_first=True)
        self.init_state = nn.Linear(z_dim, mc.hidden_dim, bias=mc.layer_biases) if z_dim else None
        self.drop_in = Dropout(mc.dec_dropout_in, mc.dropout_masks)
        self.drop_out = Dropout(mc.dec_dropout_out, mc.dropout_masks)
        self.project = nn.Linear(mc.hidden_dim, vocab_size, bias=mc.layer_biases)

    def initial_state(self, z: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.init_state is None:
            return None
        c0 = self.init_state(z)
        return torch.tanh(c0).unsqueeze(0), c0.unsqueeze(0).contiguous()

    def _inputs(self, tokens: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        x = self.drop_in(self.embed(tokens))
        if self.z_dim:
            x = torch.cat([x, z.unsqueeze(1).expand(-1, x.size(1), -1)], dim=-1)
        return x

    def forward(self, tokens: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """Logits [B, L, V] for the next token at every position of `tokens`."""
        return self.project(self.hidden(tokens, z))

    @staticmethod
    def padded_width(vocab_size: int, multiple: int = 64) -> int:
        """The output layer's width as padded_output multiplies it: the vocabulary rounded up to a
        multiple of `multiple`, since MKL multiplies such widths faster than odd ones (measured:
        docs/cpu-notes.md)."""
        return -(-vocab_size // multiple) * multiple

    def padded_output(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The output layer's (weights [V', hidden], bias [V']) with V' = padded_width(V), the extra
        words scored -inf (no probability changes; differentiable)."""
        weight, bias = self.project.weight, self.output_bias()
        extra = self.padded_width(len(bias)) - len(bias)
        if not extra:
            return weight, bias
        return (
            torch.cat([weight, weight.new_zeros(extra, weight.size(1))]),
            torch.cat([bias, bias.new_full((extra,), -math.inf)]),
        )

    def output_bias(self) -> torch.Tensor:
        """The output layer's bias, or zeros where the model has none (layer_biases=False)."""
        bias = self.project.bias
        return bias if bias is not None else self.project.weight.new_zeros(self.project.out_features)

    def evaluation_head(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """padded_output with the weights transposed once to [hidden, V']: the faster layout for
        products without gradients (sentence_nll); `dtype` is the one the LSTM's outputs come in
        (bfloat16 under core.library.precision's bf16), the product's."""
        weight, bias = self.padded_output()
        kind = weight.device.type
        dtype = dtype or (torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else weight.dtype)
        return weight.t().contiguous().to(dtype), bias  # the bias is added in float32 (output_scores)

    def hidden(self, tokens: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """The LSTM's outputs [B, L, hidden] (after output dropout), which the output layer scores."""
        out, _ = self.lstm(self._inputs(tokens, z), self.initial_state(z))
        return self.drop_out(out)

    def sentence_nll(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        z: torch.Tensor | None,
        head: tuple[torch.Tensor, torch.Tensor] | None = None,
        chunk: int = 512,
    ) -> torch.Tensor:
        """-log p(targets | inputs, z) per row [N], for rows of one length (no padding), for
        evaluation. `head` is evaluation_head(), which a caller with many calls makes once; the
        output layer runs on `chunk` positions at a time, so memory holds chunk x V' scores, never
        [N, L, V']."""
        h = self.hidden(inputs, z).reshape(-1, self.project.in_features)
        weight, bias = head or self.evaluation_head(h.dtype)
        h = h.to(weight.dtype)
        flat = targets.reshape(-1)
        nll = torch.empty(len(flat), device=h.device, dtype=torch.float32)
        scores = h.new_empty(min(chunk, len(flat)), weight.size(1))  # one buffer: fresh pages cost more than the sums
        wide = scores if scores.dtype == torch.float32 else torch.empty(scores.shape, device=h.device)
        for start in range(0, len(flat), chunk):
            part = slice(start, start + chunk)
            n = len(flat[part])
            if scores.dtype == torch.float32:
                logits = torch.addmm(bias, h[part], weight, out=scores[:n])
            else:  # as output_scores: the product in bf16, the bias and the sums in float32
                logits = wide[:n].copy_(torch.mm(h[part], weight, out=scores[:n])).add_(bias)
            target = logits.gather(1, flat[part].unsqueeze(1))[:, 0]
            top = logits.amax(1, keepdim=True)
            nll[part] = logits.sub_(top).exp_().sum(1).log_().add_(top[:, 0]).sub_(target)
        return nll.view(targets.shape).sum(1)

    def step(self, tokens: torch.Tensor, z: torch.Tensor | None, state):
        """One decoding step for [N] tokens: (log-probabilities [N, V], new state)."""
        out, state = self.lstm(self._inputs(tokens.unsqueeze(1), z), state)
        return F.log_softmax(
            output_scores(self.drop_out(out[:, 0]), self.project.weight, self.output_bias()), dim=-1
        ), state


class TextVAE(nn.Module):
    """Encoder + decoder. `latent=False` gives the LSTM language model (the decoder without z)."""

    def __init__(self, vocab_size: int, mc: ModelConfig, latent: bool = True, pad: int = 0):
        super().__init__()
        self.model_config = mc
        self.pad = pad
        self.latent = latent
        self.z_dim = mc.z_dim if latent else 0
        self.encoder = Encoder(vocab_size, mc) if latent else None
        self.decoder = Decoder(vocab_size, mc, self.z_dim)

    def init_weights(self, init_range: float, emb_init_range: float, generator: torch.Generator) -> None:
        """U(-0.01, 0.01) for weights, U(-0.1, 0.1) for embeddings (He et al. 2019)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                r = emb_init_range if "embed" in name else init_range
                p.copy_(torch.rand(p.shape, generator=generator) * 2 * r - r)

    # -- the pieces objectives and metrics combine ------------------------------------------------

    def encode(self, batch: Batch):
        return self.encoder(batch.tokens, batch.lengths)

    @staticmethod
    def sample_z(mu: torch.Tensor, logvar: torch.Tensor, n: int = 1, generator=None) -> torch.Tensor:
        """Reparameterised samples [B, n, Z]."""
        eps = torch.randn((n, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype).transpose(0, 1)
        return mu.unsqueeze(1) + eps * (0.5 * logvar).exp().unsqueeze(1)

    @staticmethod
    def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z_d|x) || N(0, 1)) per sentence and dimension [B, Z]."""
        return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per sentence [B]."""
        return TextVAE.kl_per_dimension(mu, logvar).sum(-1)

    @staticmethod
    def log_gaussian(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """log N(z; mu, diag(exp logvar)), summed over the last dimension."""
        return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)

    def reconstruction(self, batch: Batch, z: torch.Tensor | None, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x|z) per sentence [B] (z [B, Z]), or [B, K] for z [B, K, Z]; summed over the words and </s>.

        `inputs` replaces the decoder's input tokens (word dropout); targets are always the real words.
        """
        inputs = batch.inputs if inputs is None else inputs
        targets = batch.targets
        k = 0
        if z is not None and z.dim() == 3:
            k = z.size(1)
            z = z.reshape(-1, z.size(-1))
            inputs = inputs.repeat_interleave(k, dim=0)
            targets = targets.repeat_interleave(k, dim=0)
        weight, bias = self.decoder.padded_output()
        hidden = self.decoder.hidden(inputs, z).reshape(-1, weight.size(1))  # 2-D: a 3-D input takes a slower product
        nll = word_nll(output_scores(hidden, weight, bias), targets.reshape(-1), self.pad).view(targets.shape).sum(-1)
        return nll.view(-1, k) if k else nll


def output_scores(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The output layer's scores hidden @ weight.T + bias, in float32. Under bf16 (core.library.precision)
    the product runs in bf16 and the bias is added after it in float32: the bias carries much of a
    rare word's score, and rounding it with the product moved a tiny PTB model's NLL by 0.04 nats a
    sentence, against 0.0004 so."""
    if torch.is_autocast_enabled(hidden.device.type):
        return F.linear(hidden, weight).float().add_(bias)
    return F.linear(hidden, weight, bias)


class _WordNLL(torch.autograd.Function):
    """F.cross_entropy(reduction="none", ignore_index) with a leaner backward: the gradient
    (softmax - one-hot, times the incoming one) is made in the memory of the saved probabilities,
    where cross_entropy fills a dense [N, V] zero gradient, writes a new one and takes exp of its
    saved log-softmax. On the CPU the forward keeps softmax(logits) and takes the log of the
    targets' entries only, so no pass takes exp over [N, V] at all; a target probability below
    float32's normal range (a loss over 87 nats, where log loses precision) is scored by
    log_softmax of its row. That check is a device sync, so elsewhere the forward takes
    log_softmax and exp, as before."""

    @staticmethod
    def forward(ctx, logits, targets, ignore):
        keep = targets != ignore
        safe = targets.masked_fill(~keep, 0).unsqueeze(1)
        if logits.device.type == "cpu":
            p = torch.softmax(logits, 1)
            target_p = p.gather(1, safe)[:, 0]
            nll = -target_p.log()
            low = (target_p < torch.finfo(p.dtype).tiny).nonzero()[:, 0]
            if len(low):
                nll[low] = -torch.log_softmax(logits[low], 1).gather(1, safe[low])[:, 0]
        else:
            log_p = torch.log_softmax(logits, 1)
            nll = -log_p.gather(1, safe)[:, 0]
            p = log_p.exp_()
        ctx.save_for_backward(p, safe, keep)
        return nll * keep

    @staticmethod
    def backward(ctx, grad):
        p, safe, keep = ctx.saved_tensors
        g = (grad * keep).unsqueeze(1)
        out = p.mul_(g)  # p is not used again: its memory becomes the gradient
        out.scatter_add_(1, safe, -g)
        return out, None, None


def word_nll(logits: torch.Tensor, targets: torch.Tensor, ignore: int) -> torch.Tensor:
    """-log softmax(logits)[target] per row [N], 0 where target == ignore."""
    if torch.is_grad_enabled() and logits.requires_grad:
        return _WordNLL.apply(logits, targets, ignore)
    return F.cross_entropy(logits, targets, ignore_index=ignore, reduction="none")


@contextmanager
def evaluating(model: nn.Module, seed: int | None = 0) -> Iterator[tuple[torch.device, torch.Generator]]:
    """Eval mode and no gradients, with a generator on the model's device (seeded, or fresh when
    seed is None) so results repeat and the global RNG is left alone; training mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed) if seed is not None else gen.seed()
    try:
        with torch.no_grad():
            yield device, gen
    finally:
        model.train(was_training)
