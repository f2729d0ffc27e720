"""What every tab shares: the checkpoints found, the data folder, and the caches.

Checkpoints load lazily, once, and stay in memory; a folder that fails to load keeps its error
message, which the tabs show in that model's column instead of output. Everything else computed
(corpus splits, posterior means, maps, neighbour indexes) is kept in one memory cache bounded at
MEMO_BYTES, least recently used out first, over a disk cache that holds every array built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import core
from core import InputError, VaeMineError, available_corpora, is_bundle, split_digest
from core.library.files import atomic_write

log = logging.getLogger(__name__)
# the default pair, each side's preferences in order: the shipped VAE-MINE with the named settings that make
# its decoder read its code (docs/mine-variants.md) before the paper's own
DEFAULT_PAIR = (("lagging",), ("vae-mine-infonce", "vae-mine"))
MEMO_BYTES = 256 * 2**20
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # what a checkpoint or corpus name may look like
SPLITS = ("valid", "test", "train")
SURROGATE = re.compile("[\ud800-\udfff]")
MODEL_ARGUMENTS = ("left", "right")  # request arguments that name a checkpoint
# characters of a text argument, checked before anything reads it: a sentence box's 20 lines of up to
# 1,000 characters (a model reads at most a few hundred words of each); `yours` has its own cap in bytes
MAX_TEXT = 20_000
TEXT_CAPS = {"yours": 2 * core.OWN_MAX_BYTES}  # over it, core.own_sentences says "at most 2 MB"


def size_of(value) -> int:
    """Bytes a memoised value holds, roughly: arrays and anything else that counts its own (`nbytes`:
    core.Placement, core.CosineIndex), sentence lists."""
    if isinstance(getattr(value, "nbytes", None), int):
        return value.nbytes
    if isinstance(value, list):
        return sum(sys.getsizeof(v) + 8 for v in value)
    return sys.getsizeof(value)


class Memo:
    """A dict bounded by the total size of its values: the least recently used go first, and a
    value larger than the whole bound is returned but not kept. Thread-safe."""

    def __init__(self, max_bytes: int = MEMO_BYTES):
        self.max_bytes, self.bytes = max_bytes, 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        """The value, or KeyError."""
        with self._lock:
            self._items.move_to_end(key)
            return self._items[key][0]

    def __contains__(self, key) -> bool:
        return key in self._items

    def put(self, key, value) -> None:
        size = size_of(value)
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                self.bytes -= self._items.popitem(last=False)[1][1]


def one_of(what: str, value, allowed) -> str:
    """value when it is a well-formed name among `allowed`; else InputError listing them. The type
    and characters are checked first, so nothing else is ever compared or used as a path."""
    allowed = list(allowed)
    listed = ", ".join(allowed) or "none available"
    if not isinstance(value, str) or not NAME.fullmatch(value) or value not in allowed:
        shown = (
            repr(value)
            if isinstance(value, str) and NAME.fullmatch(value)
            else "a path or malformed name"
            if isinstance(value, str)
            else f"a {type(value).__name__}"
        )
        raise InputError(f"{what}: {shown} is not one of the names offered here ({listed})")
    return value


class Unavailable(VaeMineError):
    """A model or corpus a tab needs is not there; the text says what is missing."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("VAE_MINE_CACHE", Path.home() / ".cache" / "vae-mine" / "explorer"))


@dataclass
class Context:
    checkpoints: Path
    data_dir: str | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    _models: dict = field(default_factory=dict, repr=False)
    _errors: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memo: Memo = field(default_factory=Memo, repr=False)
    _building: dict = field(default_factory=dict, repr=False)  # key -> the lock its one build holds
    _building_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # corpus folders or files outside the data folder that the operator allows (app.py --corpus): a
    # bundle whose corpus is one of these paths is read; any other path a bundle names is not
    own_corpora: tuple = ()

    def __post_init__(self):
        self.own_corpora = tuple(Path(p).resolve() for p in self.own_corpora)

    def readable_corpus(self, corpus: str) -> bool:
        """A corpus a bundle names may be read: a name in the data folder, or a path the operator allowed."""
        return bool(NAME.fullmatch(corpus)) or Path(corpus).resolve() in self.own_corpora

    # -- checkpoints ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Checkpoint folders (any sub-folder holding a config.json, its name one a request may
        give), sorted."""
        if not self.checkpoints.is_dir():
            return []
        return sorted(p.name for p in self.checkpoints.iterdir() if NAME.fullmatch(p.name) and is_bundle(p))

    # -- the boundary: every request argument that names something, checked before any path is built

    def vet_arguments(self, args: dict) -> dict:
        """args with each argument that names a checkpoint, corpus or split checked: a clear
        InputError naming the allowed values otherwise, before any file is touched."""
        out = dict(args)
        for key, value in args.items():
            cap = TEXT_CAPS.get(key, MAX_TEXT)
            if isinstance(value, str) and len(value) > cap:  # refused before it is split, tokenised or searched
                raise InputError(f"{key} holds {len(value):,} characters; at most {cap:,} are read")
            if isinstance(value, str) and SURROGATE.search(value):  # not Unicode text: no answer could carry it back
                raise InputError(f"{key} holds an unpaired surrogate (U+D800-U+DFFF), which is not valid text")
            if key in MODEL_ARGUMENTS:
                out[key] = self.check_model(key, value)
            elif key == "corpus":
                out[key] = one_of("corpus", value, self.lab_corpora())
            elif key == "split":
                out[key] = one_of("split", value, SPLITS)
        return out

    def check_model(self, what: str, value) -> str | None:
        """A checkpoint name from a request: None or "" (none chosen), or one of names()."""
        if value is None or value == "":
            return None
        return one_of(f"{what} model", value, self.names())

    def public(self, text: str) -> str:
        """A message as visitors may read it: the server's own folders (data, checkpoints, cache)
        named by what they are, not by their paths."""
        folders = {
            core.data_dir(self.data_dir): "the data folder",
            self.checkpoints: "the checkpoint folder",
            self.cache_dir: "the cache folder",
        }
        for folder, called in sorted(folders.items(), key=lambda kv: -len(str(kv[0]))):
            for form in {str(folder), str(Path(folder).resolve())}:
                if "/" in form:  # a bare relative name ("data") is also an ordinary word
                    text = text.replace(form, f"<{called}>")
        return text

    def lab_corpora(self) -> list[str]:
        """The corpora the classroom lab offers (and accepts): those in the data folder it can train on
        (a training split present: SNLI and Yahoo ship without one here), the checkpoints' own among them."""
        root = core.data_dir(self.data_dir)
        return [c for c in self.corpora() if (root / c / "train.txt").is_file()]

    def info(self, name: str) -> core.BundleInfo | None:
        """What a checkpoint is (from its config.json), or None when that is unreadable."""
        try:
            return core.describe(self.checkpoints / name)
        except VaeMineError:
            return None

    def label(self, name: str) -> str:
        info = self.info(name)
        return f"{name} (unreadable config)" if info is None else info.label

    def corpora(self) -> list[str]:
        """The corpora found in the data folder."""
        return available_corpora(self.data_dir)

    def corpus_problems(self) -> dict[str, tuple[str, str]]:
        """Checkpoint name -> ("missing" or "differs", message) for each checkpoint whose corpus is not
        the one it trained on (hashing each training file once)."""
        infos = {name: info for name, info in ((n, self.info(n)) for n in self.names()) if info}
        outside = {
            name: (
                "missing",
                f"its corpus is a path ({Path(info.corpus).name!r}); the explorer reads corpora only "
                f"from its data folder or a folder given with --corpus",
            )
            for name, info in infos.items()
            if not self.readable_corpus(info.corpus)
        }
        return outside | {
            name: problem
            for name, info in infos.items()
            if name not in outside
            if (
                problem := self.memo(
                    ("corpus problem", info.corpus, info.corpus_sha256),
                    lambda info=info: info.corpus_problem(self.data_dir),
                )
            )
        }

    def choices(self) -> list[tuple[str, str]]:
        return [(self.label(n), n) for n in self.names()]

    def default_pair(self) -> tuple[str | None, str | None]:
        """LaggingVAE on the left and VAE-MINE on the right (DEFAULT_PAIR's preferences) when shipped,
        else the first two found."""
        names = self.names()
        picked = []
        for kinds in DEFAULT_PAIR:
            match = next(
                (
                    [n for n in names if n.endswith(kind) and n not in picked]
                    for kind in kinds
                    if any(n.endswith(kind) and n not in picked for n in names)
                ),
                [],
            )
            if match:
                picked.append(match[0])
        for n in names:
            if len(picked) >= 2:
                break
            if n not in picked:
                picked.append(n)
        picked += [None] * (2 - len(picked))
        return picked[0], picked[1] if picked[1] is not None else picked[0]

    def model(self, name: str | None) -> core.TextVAEModel:
        if not name:
            raise Unavailable("no checkpoint chosen (none found)" if not self.names() else "no checkpoint chosen")
        if not isinstance(name, str) or name not in self.names():
            raise Unavailable(f"no checkpoint named {str(name)[:40]!r} here")
        with self._lock:
            if name in self._models:
                return self._models[name]
            if name in self._errors:
                raise Unavailable(self._errors[name])
            try:
                model = core.load(self.checkpoints / name)
            except VaeMineError as e:
                self._errors[name] = f"cannot load {name}: {e}"
                raise Unavailable(self._errors[name]) from None
            self._models[name] = model
            return model

    def title(self, name: str | None) -> str:
        return self.label(name) if name else "no model"

    # -- corpora and memoised results --------------------------------------------------------------

    def memo(self, key, build):
        """build() for key, kept in the bounded memory cache. One build per key at a time (a second
        visitor asking for the same map waits for the first's); builds of different keys run side by
        side, so one visitor's new map size never holds up another's first map."""
        try:
            return self._memo.get(key)  # no lock: a build in progress must not hold up cached answers
        except KeyError:
            pass
        with self._building_lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            try:
                return self._memo.get(key)
            except KeyError:
                value = build()
                self._memo.put(key, value)
                return value
            finally:
                with self._building_lock:
                    self._building.pop(key, None)

    def code_state(self, model: core.TextVAEModel, progress=None) -> core.CodeState:
        """How the model's codes spread over the training split (core.code_state), once per checkpoint."""
        return self.memo(
            ("code state", model.fingerprint),
            lambda: core.code_state(self.posterior_means(model, "train", None, progress)),
        )

    def sentences(self, model: core.TextVAEModel, split: str, limit: int | None = None) -> list[str]:
        """The first `limit` sentences of a split of the model's corpus, read with the model's
        tokenizer (the split is read once and kept, not once per limit)."""
        corpus, tokenizer = model.corpus, model.config.tokenizer
        if not self.readable_corpus(corpus):  # a bundle is untrusted: it names no path the server opens
            raise Unavailable(
                f"this model's corpus is a path ({Path(corpus).name!r} on the machine it trained on); the "
                f"explorer reads corpora only from its data folder, by name, or from a folder given to "
                f"app.py with --corpus"
            )
        try:
            return self.memo(
                ("sentences", corpus, tokenizer, split),
                lambda: core.read_sentences(corpus, split, self.data_dir, None, tokenizer),
            )[:limit]
        except VaeMineError as e:
            raise Unavailable(f"the {corpus} {split} split is not available: {e}") from None

    # -- disk cache -------------------------------------------------------------------------------

    def split_digest(self, model: core.TextVAEModel, split: str) -> str:
        """The digest of a split's whole text as the model reads it (computed once)."""
        return self.memo(
            ("digest", model.corpus, model.config.tokenizer, split), lambda: split_digest(self.sentences(model, split))
        )

    def cache_path(self, kind: str, model: core.TextVAEModel, split: str, limit: int | None) -> Path:
        """A cache file keyed by the weights' sha256, the split text's sha256 and the sentence limit."""
        key = hashlib.sha256(
            json.dumps([model.fingerprint, self.split_digest(model, split), split, limit]).encode()
        ).hexdigest()[:24]
        return self.cache_dir / kind / f"{Path(model.corpus).name}-{split}-{limit}-{key}.npz"

    def whole(self, model: core.TextVAEModel, split: str, limit: int | None) -> int | None:
        """limit, or None where it covers the whole split: the one key under which the atlas, the
        disk cache and memory hold a whole split, whatever N asked for it."""
        return None if limit is None or limit >= len(self.sentences(model, split)) else limit

    def cached_array(
        self, kind: str, model: core.TextVAEModel, split: str, limit: int | None, build
    ) -> tuple[np.ndarray, bool]:
        """(an array with a row per sentence of a split's first `limit`, whether it was cached):
        from memory, else the checkpoint's atlas, else the disk cache, else build() and save it.
        Builds of one key one at a time; a limit covering the whole split is the whole split's key."""
        cached = True
        limit = self.whole(model, split, limit)

        def load_or_build() -> np.ndarray:
            nonlocal cached
            shipped = model.atlas(kind, split, limit, self.split_digest(model, split))
            if shipped is not None:
                return shipped
            path = self.cache_path(kind, model, split, limit)
            array = _load_npz(path, len(self.sentences(model, split, limit)))
            if array is None:
                cached, array = False, build()
                try:
                    save_npz(path, array=array)
                except (OSError, VaeMineError) as e:  # a full or read-only disk: the answer stands, uncached
                    log.warning("cache not written: %s", e)
            return array

        return self.memo((kind, model.fingerprint, split, limit), load_or_build), cached

    def posterior_means(
        self, model: core.TextVAEModel, split: str, limit: int | None = None, progress=None
    ) -> np.ndarray:
        """Posterior means of a split's first `limit` sentences, from memory, disk, or computed."""
        sentences = self.sentences(model, split, limit)
        return self.cached_array("means", model, split, limit, lambda: model.encode_many(sentences, progress)[0])[0]


def _load_npz(path: Path, rows: int) -> np.ndarray | None:
    """The cached array, or None when there is none or it is unreadable or of the wrong length."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            array = f["array"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # a torn or emptied file: rebuilt
        log.warning("ignoring unreadable cache %s (%s: %s); it is rebuilt", path, type(e).__name__, e)
        return None
    return array if len(array) == rows else None


def save_npz(path: Path, **arrays) -> None:
    """Write then rename (core.library.files), so a crash never leaves a half-written cache file."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)
