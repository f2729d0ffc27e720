"""The public API the explorer is built on: `core.load(path)` and the model it returns.

Sentences go in as plain strings and come out as plain strings; latent codes are NumPy arrays.
Input goes through the bundle's own tokenizer (core.library.tokenize, the one its corpus was read with),
words the vocabulary lacks are read as <unk> and reported, and anything unusable raises
`InputError` with a message meant for people.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..library.batching import Dataset
from ..library.checkpoint import (
    CONFIG,
    LOG,
    METRICS,
    WEIGHTS,
    check_metrics,
    load_bundle,
    read_config,
    read_json,
    read_log,
    read_probe,
)
from ..library.corpora import read_sentences
from ..library.corpora import resolve as resolve_corpus
from ..library.decoding import beam_decode, step_decode
from ..library.device import pick_device
from ..library.errors import CorpusError, InputError
from ..library.evaluation import evaluate_split
from ..library.metrics import active_units as _active_units
from ..library.models import evaluating
from ..library.objectives import departures, objective_class
from ..library.objectives.schedules import how_training_ended
from ..library.tokenize import UNRECORDED, tokenize
from . import atlas

log = logging.getLogger(__name__)
STRATEGIES = ("greedy", "sample", "beam")
MODES = ("linear", "slerp")
CHUNK = 256  # sentences or codes per forward pass
MAX_SENTENCES = 10_000  # per call of prepare / encode / decode (encode_many and evaluate take any number)


@dataclass(frozen=True)
class Limit:
    """The allowed range of one argument, so that the API and every control that sets it (the
    explorer's number boxes) agree: `check` returns the value as a number or raises InputError
    naming the range."""

    label: str
    low: float
    high: float
    whole: bool = True

    @property
    def ends(self) -> tuple[str, str]:
        """low and high as people read them: 10,000, not 10000.0."""
        return tuple(f"{int(x):,}" if float(x).is_integer() else f"{x:g}" for x in (self.low, self.high))

    @property
    def allowed(self) -> str:
        return f"{'a whole number' if self.whole else 'a number'} between {self.ends[0]} and {self.ends[1]}"

    def check(self, value) -> int | float:
        number = _number(value)
        if number is None or not self.low <= number <= self.high or (self.whole and number != int(number)):
            shown = "nothing" if value is None or (isinstance(value, str) and not value.strip()) else repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise InputError(f"{self.label} must be {self.allowed}; got {shown}")
        return int(number) if self.whole else float(number)


def _number(value) -> float | None:
    """value as a finite float (numbers, or text such as "2.5"), else None. Text must be ASCII:
    Python's float() reads other scripts' digits ("١٢" is 12), which no box on the page offers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii():
            return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


EXAMPLE = "a dog runs through the grass ."  # the explorer's first sentence, and the use-of-z figure's

# Every range the API checks, in one table: core's methods check their arguments against it and
# the explorer builds its number boxes from it.
LIMITS = {
    "temperature": Limit("temperature", 0.1, 2.0, whole=False),
    "beam_size": Limit("beam size", 1, 10),
    "seed": Limit("seed", 0, 2**31 - 1),
    "steps": Limit("steps", 2, 50),
    "samples": Limit("posterior samples", 0, 10),
    "n": Limit("number of sentences", 1, 200),
    "k": Limit("k", 1, 50),
    "map_n": Limit("sentences on the map", 50, 1_000_000),
    "compare_n": Limit("sentences in the compare view", 50, 10_000),
    "lab_seconds": Limit("the lab's seconds", 1, 600, whole=False),
    "lab_sentences": Limit("the lab's training sentences", 64, 50_000),
    "lab_valid": Limit("the lab's validation sentences", 16, 5_000),
}


def check(name: str, value) -> int | float:
    """value checked against LIMITS[name]: the number, or InputError naming the allowed range."""
    return LIMITS[name].check(value)


def _seed(seed) -> int | None:
    return None if seed is None else check("seed", seed)


@dataclass(frozen=True)
class Decoding:
    """The decoding defaults, in one place: the API's methods and the explorer's controls use them."""

    strategy: str = "greedy"
    temperature: float = 1.0
    beam_size: int = 5
    seed: int = 0
    max_len: int = 50

    def options(self, given: dict) -> dict:
        """max_len, temperature and beam_size: those given (no other names), the rest these defaults."""
        allowed = {"max_len": self.max_len, "temperature": self.temperature, "beam_size": self.beam_size}
        unknown = set(given) - set(allowed)
        if unknown:
            raise InputError(f"unknown decoding options: {', '.join(sorted(unknown))}")
        return {**allowed, **given}


DECODING = Decoding()


def decoding_options(
    strategy: str = DECODING.strategy,
    temperature=DECODING.temperature,
    beam_size=DECODING.beam_size,
    seed=DECODING.seed,
    fresh_seed: bool = True,
) -> dict:
    """Decoding settings checked: only those the strategy uses (greedy ignores temperature and
    beam size); seed None draws a fresh one where fresh_seed allows it (the explorer's controls
    refuse an empty seed box)."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown decoding strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return {
        "strategy": strategy,
        "seed": _seed(seed) if fresh_seed else check("seed", seed),
        "temperature": check("temperature", temperature) if strategy == "sample" else None,
        "beam_size": check("beam_size", beam_size) if strategy == "beam" else None,
    }


@dataclass
class Prepared:
    """One input sentence as the model reads it. Every method that takes text takes these too, so a
    caller that prepared its input (to show its unknown words) has it tokenised once per request."""

    text: str
    tokens: list[str]
    unknown: list[str] = field(default_factory=list)
    truncated: int = 0  # tokens cut off beyond the model's maximum length
    reader: str = ""  # the bundle and tokenizer that read it: another model reads `text` afresh


class TextVAEModel:
    """A trained checkpoint, ready for inference. Thread-safe for concurrent read-only calls."""

    def __init__(self, folder: str | Path, device: str = "cpu"):
        self.path = Path(folder)
        self.device = pick_device(device)
        self.config, self.vocab, self._model, _ = load_bundle(self.path, self.device)
        self._reader = f"{self.path.resolve()}|{self.config.tokenizer}"  # what Prepared.reader says of us
        self.max_len = self.config.train.max_len
        metrics_path = self.path / METRICS
        self.metrics: dict = (
            check_metrics(read_json(metrics_path, "metrics file"), metrics_path) if metrics_path.is_file() else {}
        )

    # -- facts ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.objective.name

    @property
    def display_name(self) -> str:
        return objective_class(self.name).display_name

    @property
    def corpus(self) -> str:
        return self.config.corpus

    @property
    def latent(self) -> bool:
        return self._model.latent

    @property
    def z_dim(self) -> int:
        return self._model.z_dim

    @property
    def fingerprint(self) -> str:
        """sha256 of the weights file: a key for caches built from this checkpoint."""
        if not hasattr(self, "_fingerprint"):
            self._fingerprint = hashlib.sha256((self.path / WEIGHTS).read_bytes()).hexdigest()
        return self._fingerprint

    def probe_means(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(epochs [E], posterior means [E, N, z]) of the probe set (the first N validation sentences
        of the corpus) saved after each training epoch, or None when the bundle has none."""
        probe = read_probe(self.path)
        return None if probe is None else (probe[0].numpy(), probe[1].float().numpy())

    def atlas(self, kind: str, split: str, limit: int | None, split_digest: str) -> np.ndarray | None:
        """An array shipped in the bundle's atlas (`kind` "means" or "umap", for the first `limit`
        sentences of a split whose whole text has `split_digest`, see `core.serving.atlas.digest`), or None
        when the bundle has none for that text."""
        return atlas.read(self.path, kind, split, limit, split_digest)

    def training_replay(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(epochs [E], 2-D coordinates [E, N, 2]) of the probe set's posterior means after each saved
        epoch, all in one projection: PCA fitted on the last epoch's means, so the frames show the
        means spreading out, or shrinking onto the prior's centre, as training went. None when the
        bundle saved no probe means."""
        from sklearn.decomposition import PCA

        probe = self.probe_means()
        if probe is None:
            return None
        epochs, means = probe
        pca = PCA(n_components=2, random_state=0).fit(means[-1].astype(np.float64))
        return epochs, np.stack([pca.transform(m.astype(np.float64)) for m in means]).astype(np.float32)

    def train_log(self) -> list[dict]:
        """The per-epoch lines of train_log.jsonl (empty when the bundle has none)."""
        path = self.path / LOG
        return read_log(path) if path.is_file() else []

    def training_facts(self) -> str:
        """One line of how it was trained, for the page beside its name: epochs, how training ended
        (its schedule, or a budget first), time, seed."""
        tc, m = self.config.train, self.metrics
        log_lines = self.train_log()
        ended = how_training_ended(
            tc.lr, tc.lr_decay, tc.max_halvings, tc.epochs, tc.minutes, log_lines[-1] if log_lines else None
        )
        epochs = m.get("epochs", len(log_lines))
        return (
            f"{epochs} epoch{'s' * (epochs != 1)} (best {m.get('best_epoch', '?')}), {ended}, "
            f"{m.get('train_seconds', 0) / 60:.0f} min on {m.get('device', '?')}, seed {tc.seed}"
            + (f", first {tc.max_train:,} training sentences" if tc.max_train else "")
        )

    def __repr__(self) -> str:
        return f"TextVAEModel({self.name} on {self.corpus}, z={self.z_dim}, vocab={len(self.vocab)}, {self.path})"

    # -- text in ----------------------------------------------------------------------------------

    def prepare(self, sentences: str | Prepared | Sequence[str | Prepared]) -> list[Prepared]:
        """Tokenise as the model will: reports unknown words and truncation for each sentence. A
        sentence this model has prepared already passes through as it is."""
        if isinstance(sentences, (str, Prepared)):
            sentences = [sentences]
        if not isinstance(sentences, Sequence) or not all(isinstance(s, (str, Prepared)) for s in sentences):
            raise InputError("sentences must be a string or a list of strings")
        if not sentences:
            raise InputError("no sentences given")
        if len(sentences) > MAX_SENTENCES:
            raise InputError(f"too many sentences at once: {len(sentences)} (at most {MAX_SENTENCES})")
        out = []
        for i, text in enumerate(sentences):
            if isinstance(text, Prepared):
                if text.reader == self._reader:
                    out.append(text)
                    continue
                text = text.text
            tokens = self._tokenize(text)
            if not tokens:
                where = f"sentence {i + 1}" if len(sentences) > 1 else "the sentence"
                raise InputError(f"{where} is empty (after removing control characters)")
            cut = max(0, len(tokens) - self.max_len)
            if cut:
                log.warning("sentence %d: %d tokens beyond the maximum of %d were cut", i + 1, cut, self.max_len)
                tokens = tokens[: self.max_len]
            out.append(Prepared(text, tokens, self.vocab.unknown(tokens), cut, self._reader))
        unknown = sorted({w for p in out for w in p.unknown})
        if unknown:
            log.debug("read as <unk>: %s", ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else ""))
        return out

    def _tokenize(self, text: str) -> list[str]:
        return tokenize(self.config.tokenizer, text, self.vocab)

    def unknown_words(self, sentences: str | Sequence[str]) -> list[list[str]]:
        return [p.unknown for p in self.prepare(sentences)]

    # -- latent space -----------------------------------------------------------------------------

    def _require_latent(self) -> None:
        if not self.latent:
            raise InputError(f"{self.name} is a language model: it has no latent space to encode into")

    @torch.no_grad()
    def _posterior(self, sentences) -> tuple[torch.Tensor, torch.Tensor]:
        self._require_latent()
        prepared = self.prepare(sentences)
        mus, logvars = [], []
        for start in range(0, len(prepared), CHUNK):
            data = Dataset([p.tokens for p in prepared[start : start + CHUNK]], self.vocab)
            batch = data.batch(torch.arange(len(data))).to(self.device)
            _, mu, logvar = self._model.encode(batch)
            mus.append(mu.float().cpu())
            logvars.append(logvar.float().cpu())
        return torch.cat(mus), torch.cat(logvars)

    def encode(self, sentences: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior parameters (mu, logvar), each [N, z_dim]."""
        mu, logvar = self._posterior(sentences)
        return mu.numpy(), logvar.numpy()

    def encode_split(
        self, split: str = "train", limit: int | None = None, data_dir: str | None = None, progress=None
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(sentences, mu, logvar) for the first `limit` sentences of a split of this model's corpus.

        Raises CorpusError when the corpus is missing.
        """
        sentences = read_sentences(self.corpus, split, data_dir, limit, self.config.tokenizer)
        return (sentences, *self.encode_many(sentences, progress))

    def encode_many(self, sentences: Sequence[str], progress=None) -> tuple[np.ndarray, np.ndarray]:
        """`encode` for any number of sentences, in chunks; `progress(done, total)` after each chunk."""
        mus, logvars = [], []
        step = CHUNK * 8
        for start in range(0, len(sentences), step):
            mu, logvar = self._posterior(sentences[start : start + step])
            mus.append(mu.numpy())
            logvars.append(logvar.numpy())
            if progress is not None:
                progress(min(start + step, len(sentences)), len(sentences))
        if not mus:
            raise InputError("no sentences given")
        return np.concatenate(mus), np.concatenate(logvars)

    def evaluate(self, sentences: Sequence[str], seed: int = 0) -> dict[str, float]:
        """core.library.evaluation's figures (NLL as the negative ELBO, KL, MI, AU, PPL, ...) on these sentences."""
        sentences = list(sentences)
        tokens = [
            p.tokens
            for start in range(0, len(sentences), MAX_SENTENCES)
            for p in self.prepare(sentences[start : start + MAX_SENTENCES])
        ]
        data = Dataset(tokens, self.vocab)
        return evaluate_split(self._model, data, CHUNK, seed=seed)

    def kl(self, sentences: str | Sequence[str], per_dimension: bool = False) -> np.ndarray:
        """KL(q(z|x) || N(0, I)) per sentence [N], or per sentence and dimension [N, z_dim], in nats."""
        mu, logvar = self._posterior(sentences)
        return (self._model.kl_per_dimension(mu, logvar) if per_dimension else self._model.kl(mu, logvar)).numpy()

    def decoder_use_of_z(self, sentence: str, seed: int | None = 0) -> dict:
        """Does the decoder read z? For one sentence, read word by word (teacher forcing): at each
        position the KL divergence, in nats, from the next-word distribution under the sentence's own
        code (its posterior mean) to the one under another code: a draw from the prior ("prior") and
        the prior's mean, the zero vector ("zero"). Near 0 at every word: the decoder ignores z.

        Returns {"words": the target words (the sentence as read, then </s>), "prior": [KL per word],
        "zero": [KL per word], "mean_prior": float, "mean_zero": float}.
        """
        self._require_latent()
        prepared = self.prepare([sentence])[0]
        data = Dataset([prepared.tokens], self.vocab)
        batch = data.batch(torch.arange(1)).to(self.device)
        with evaluating(self._model, seed) as (device, gen):
            _, mu, _ = self._model.encode(batch)
            others = {"prior": torch.randn(mu.shape, generator=gen, device=device), "zero": torch.zeros_like(mu)}
            own = torch.log_softmax(self._model.decoder(batch.inputs, mu).float(), -1)[0]
            out = {"words": [self.vocab.itos[int(i)] for i in batch.targets[0]]}
            for name, z in others.items():
                other = torch.log_softmax(self._model.decoder(batch.inputs, z).float(), -1)[0]
                kl = (own.exp() * (own - other)).sum(-1).clamp(min=0)
                out[name], out[f"mean_{name}"] = kl.cpu().tolist(), float(kl.mean())
        return out

    def use_of_z(self, sentence: str = EXAMPLE, draws: int = 20) -> float:
        """decoder_use_of_z's mean KL per word against a prior draw, averaged over `draws` draws
        (seeds 0..draws-1: one draw moves the figure by about 0.5-0.8 nats). Near 0: the decoder
        ignores z, whatever AU says about the encoder."""
        return float(np.mean([self.decoder_use_of_z(sentence, seed=s)["mean_prior"] for s in range(draws)]))

    def posterior_samples(self, sentences: str | Sequence[str], k: int, seed: int | None = 0) -> np.ndarray:
        """k reparameterised draws z ~ q(z|x) per sentence, [k, N, z_dim] (repeatable for a seed)."""
        k, seed = check("samples", k), _seed(seed)
        mu, logvar = self._posterior(sentences)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self._model.sample_z(mu, logvar, k, gen).transpose(0, 1).numpy()

    def analogy(self, a: str, b: str, c: str, **decode_args) -> str:
        """a : b :: c : ?, decoded from mu(c) + mu(b) - mu(a)."""
        mu, _ = self._posterior([a, b, c])
        return self.decode((mu[2] + mu[1] - mu[0]).numpy(), **decode_args)[0]

    def _codes(self, z) -> torch.Tensor:
        self._require_latent()
        try:
            z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        except (TypeError, ValueError) as e:
            raise InputError(f"latent codes must be numbers: {e}") from None
        if z.dim() == 1:
            z = z.unsqueeze(0)
        if z.dim() != 2 or z.size(1) != self.z_dim:
            raise InputError(f"latent codes must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if not torch.isfinite(z).all():
            raise InputError("latent codes contain NaN or infinity")
        if z.size(0) > MAX_SENTENCES:
            raise InputError(f"too many codes at once: {z.size(0)} (at most {MAX_SENTENCES})")
        return z

    # -- text out ---------------------------------------------------------------------------------

    def decode(
        self,
        z,
        strategy: str = DECODING.strategy,
        max_len: int = DECODING.max_len,
        temperature: float = DECODING.temperature,
        beam_size: int = DECODING.beam_size,
        seed: int | None = DECODING.seed,
    ) -> list[str]:
        """Sentences for latent codes z [N, z_dim] (or one code [z_dim])."""
        return self._generate(self._codes(z), None, strategy, max_len, temperature, beam_size, seed)

    def _generate(
        self,
        z: torch.Tensor | None,
        n: int | None,
        strategy: str,
        max_len: int,
        temperature: float,
        beam_size: int,
        seed: int | None = 0,
    ) -> list[str]:
        _, seed, temperature, beam_size = decoding_options(strategy, temperature, beam_size, seed).values()
        max_len = Limit("max_len", 1, self.max_len).check(max_len)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed) if seed is not None else gen.seed()
        total = z.size(0) if z is not None else n
        out: list[str] = []
        for start in range(0, total, CHUNK):
            zc = z[start : start + CHUNK].to(self.device) if z is not None else None
            nc = min(CHUNK, total - start)
            if strategy == "beam":
                ids = beam_decode(self._model, self.vocab, zc, max_len, beam_size, n=nc)
            else:
                ids = step_decode(self._model, self.vocab, zc, max_len, temperature, gen, n=nc)
            out.extend(" ".join(self.vocab.words(seq)) for seq in ids)
        return out

    def reconstruct(
        self,
        sentences: str | Sequence[str],
        from_mean: bool = True,
        strategy: str = DECODING.strategy,
        seed: int | None = DECODING.seed,
        **decode_args,
    ) -> list[str]:
        """Encode then decode: from the posterior mean, or from one posterior sample per sentence."""
        seed = _seed(seed)
        mu, logvar = self._posterior(sentences)
        z = mu if from_mean else self._model.sample_z(mu, logvar, 1, torch.Generator().manual_seed(seed or 0))[:, 0]
        return self._generate(z, None, strategy, seed=seed, **DECODING.options(decode_args))

    def sample_prior(
        self, n: int, seed: int | None = DECODING.seed, strategy: str = DECODING.strategy, **decode_args
    ) -> list[str]:
        """n sentences decoded from z ~ N(0, I) (or from the language model itself)."""
        n = check("n", n)
        z = self.prior_codes(n, seed) if self.latent else None
        return self._generate(
            None if z is None else torch.as_tensor(z), n, strategy, seed=seed, **DECODING.options(decode_args)
        )

    def prior_codes(self, n: int, seed: int | None = 0) -> np.ndarray:
        self._require_latent()
        n, seed = Limit("n", 1, MAX_SENTENCES).check(n), _seed(seed)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn(n, self.z_dim, generator=gen).numpy()

    def interpolate(
        self,
        a: str,
        b: str,
        steps: int = 5,
        mode: str = "linear",
        strategy: str = DECODING.strategy,
        seed: int | None = 0,
        **decode_args,
    ) -> list[str]:
        """Sentences decoded along the path between the posterior means of a and b (both ends included)."""
        return self._generate(
            torch.as_tensor(self.interpolation_codes(a, b, steps, mode)),
            None,
            strategy,
            seed=seed,
            **DECODING.options(decode_args),
        )

    def sweep_unit(
        self,
        sentence: str,
        dim: int,
        spread: float,
        steps: int = 7,
        strategy: str = DECODING.strategy,
        seed: int | None = 0,
        **decode_args,
    ) -> list[tuple[float, float, str]]:
        """What one latent dimension does: the sentence's posterior mean with dimension `dim` moved by
        -3 ... +3 times `spread` (e.g. that dimension's standard deviation of posterior means over
        the training split) in `steps` even steps, each decoded: [(offset in spreads, value of z[dim],
        sentence)]."""
        if not isinstance(dim, (int, np.integer)) or not 0 <= dim < self.z_dim:
            raise InputError(f"dimension must be a whole number between 0 and {self.z_dim - 1}; got {dim!r}")
        steps = check("steps", steps)
        if not (isinstance(spread, (int, float)) and math.isfinite(spread) and spread > 0):
            raise InputError(f"spread must be a positive number; got {spread!r}")
        mu, _ = self._posterior([sentence])
        offsets = torch.linspace(-3.0, 3.0, steps)
        z = mu.repeat(steps, 1)
        z[:, dim] = mu[0, dim] + offsets * spread
        sentences = self._generate(z, None, strategy, seed=seed, **DECODING.options(decode_args))
        return list(zip(offsets.tolist(), z[:, dim].tolist(), sentences))

    def interpolation_codes(self, a: str, b: str, steps: int = 5, mode: str = "linear") -> np.ndarray:
        if mode not in MODES:
            raise InputError(f"unknown interpolation mode {mode!r}; choose linear or slerp")
        steps = check("steps", steps)
        if not isinstance(a, (str, Prepared)) or not isinstance(b, (str, Prepared)):
            raise InputError("interpolate takes two sentences")
        mu, _ = self._posterior([a, b])
        t = torch.linspace(0, 1, steps).unsqueeze(1)
        za, zb = mu[0:1], mu[1:2]
        if mode == "slerp":
            cos = (za @ zb.T / (za.norm() * zb.norm()).clamp_min(1e-12)).clamp(-1, 1)
            omega = torch.arccos(cos)
            if float(omega.sin()) > 1e-6:
                return ((torch.sin((1 - t) * omega) * za + torch.sin(t * omega) * zb) / omega.sin()).numpy()
        return ((1 - t) * za + t * zb).numpy()


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle is, read from its config.json alone (no weights loaded)."""

    path: Path
    objective: str
    display_name: str
    corpus: str
    config_name: str
    latent: bool
    settings: dict
    tokenizer: str = UNRECORDED
    corpus_sha256: str | None = None  # of the training file; None in bundles that predate the record
    departures: dict = field(default_factory=dict)  # settings beyond the paper's (Objective.departures)

    @property
    def label(self) -> str:
        """How a model is named wherever it is shown; one trained with settings beyond its paper's says
        so (short, as it heads table columns)."""
        beyond = " · beyond the paper" if self.departures else ""  # which settings: the card, and `departures`
        return f"{self.display_name} · {Path(self.corpus).name} ({self.path.name}){beyond}"

    def corpus_problem(self, data_dir: str | None = None) -> tuple[str, str] | None:
        """("missing" or "differs", a message) when this bundle's corpus is not the one it was trained
        on, or None when it is there (with the recorded sha256 of its training file, if any)."""
        try:
            digest = resolve_corpus(self.corpus, data_dir).sha256()
        except CorpusError as e:
            return "missing", f"its corpus {self.corpus} is missing ({e})"
        if self.corpus_sha256 and digest != self.corpus_sha256:
            return "differs", (
                f"its corpus {self.corpus} differs from the one it was trained on (training file sha256 "
                f"{digest[:12]}... here, {self.corpus_sha256[:12]}... then): neighbours and maps show other text"
            )
        return None


def is_bundle(path: str | Path) -> bool:
    """Whether the folder holds a checkpoint bundle (its config file)."""
    return (Path(path) / CONFIG).is_file()


def describe(path: str | Path) -> BundleInfo:
    """A bundle's objective, display name, corpus and settings; CheckpointError when unreadable."""
    cfg, _ = read_config(Path(path))
    cls = objective_class(cfg.objective.name)
    return BundleInfo(
        Path(path),
        cls.name,
        cls.display_name,
        cfg.corpus,
        cfg.config_name,
        cls.latent,
        cls.describe_settings(cfg.objective.settings),
        cfg.tokenizer,
        cfg.corpus_sha256,
        departures(cfg),
    )


def departure_text(departures: dict) -> str:
    """'estimator=infonce, energy_standardize_z, word_dropout=0.3' (a flag set on by its name alone)."""
    return ", ".join(
        k if v is True else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in departures.items()
    )


def active_units(mu: np.ndarray) -> tuple[int, np.ndarray]:
    """(number of active units, each dimension's variance of the posterior means) over the rows of
    mu: the AU statistic of core.evaluate, threshold AU_THRESHOLD."""
    count, var = _active_units(torch.as_tensor(np.asarray(mu)))
    return count, var.numpy()


def path_plane(path: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """2-D coordinates of a path between two codes (and of any other codes) in the plane through the
    origin that holds both ends: x along the path's direction, y along the first end's part
    orthogonal to it. Linear and spherical paths lie wholly in that plane, so the drawing is exact
    (lengths are latent distances), the origin is the prior's mean and the prior N(0, I) projects
    to N(0, I_2) (its 1-sd circle is the unit circle) in every model's plane alike."""
    path = np.asarray(path, dtype=np.float64)
    start, end = path[0], path[-1]
    basis: list[np.ndarray] = []
    for v in (end - start, start, *np.eye(path.shape[1])):  # Gram-Schmidt; unit vectors for degenerate ends
        v = v - sum((v @ u) * u for u in basis)
        if np.linalg.norm(v) > 1e-9 * max(1.0, np.abs(path).max()):
            basis.append(v / np.linalg.norm(v))
        if len(basis) == 2:
            break
    plane = np.stack(basis, axis=1)
    return [path @ plane] + [np.asarray(o, dtype=np.float64) @ plane for o in others]


def load(path: str | Path, device: str = "cpu") -> TextVAEModel:
    """Load a checkpoint bundle folder for inference (CPU by default; 'auto' uses CUDA when present)."""
    return TextVAEModel(path, device)
