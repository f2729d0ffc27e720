"""Forward and reverse perplexity with KenLM modified-Kneser-Ney 5-grams (the paper's FPPL / RPPL).

FPPL: a 5-gram trained on the real training sentences scores sentences generated from the model's
prior: are the samples fluent? RPPL: a 5-gram trained on the generated sentences scores the real
test sentences: do the samples cover the language? Models are built by KenLM's real `lmplz`
(scripts/install_kenlm.sh builds it) and queried with the `kenlm` Python module.

lmplz refuses `<unk>` in its input, but PTB's text and the models' samples both contain it; it is
written as the ordinary word UNK (the corpora are lower-cased, so nothing collides) on both sides.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import VaeMineError

ORDER = 5
UNK_WORD = "UNK"
DEFAULT_HOME = Path.home() / ".cache" / "vae-mine" / "kenlm"
INSTALL_HINT = "run `bash scripts/install_kenlm.sh` (or set $KENLM_HOME to the folder whose bin/ holds lmplz)"


class KenLMError(VaeMineError):
    """lmplz or the kenlm module is missing, or lmplz failed."""


def lmplz_path() -> Path:
    """$KENLM_HOME/bin/lmplz when $KENLM_HOME is set (as for the install script); else the install
    script's default cache; else lmplz on PATH."""
    if os.environ.get("KENLM_HOME"):
        path = Path(os.environ["KENLM_HOME"]) / "bin" / "lmplz"
    else:
        path = DEFAULT_HOME / "bin" / "lmplz"
        if not path.is_file() and shutil.which("lmplz"):
            path = Path(shutil.which("lmplz"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise KenLMError(f"KenLM's lmplz not found at {path}: {INSTALL_HINT}")
    return path


def _kenlm():
    try:
        import kenlm
    except ImportError:
        raise KenLMError(f"the kenlm Python module is not installed: {INSTALL_HINT}") from None
    return kenlm


def _line(sentence: str | Sequence[str]) -> str:
    words = sentence.split() if isinstance(sentence, str) else sentence
    return " ".join(UNK_WORD if w == "<unk>" else w for w in words)


def train_ngram(sentences: Iterable[str | Sequence[str]], order: int = ORDER, memory: str = "1G"):
    """A modified-Kneser-Ney n-gram (a `kenlm.Model`) trained by lmplz on these sentences.

    --discount_fallback lets lmplz fall back to fixed discounts when the counts of counts of a
    small or repetitive corpus (a collapsed model's samples) make the closed-form ones undefined.
    """
    kenlm, lmplz = _kenlm(), lmplz_path()
    with tempfile.TemporaryDirectory(prefix="vae-mine-kenlm-") as tmp:
        text, arpa = Path(tmp) / "text.txt", Path(tmp) / "model.arpa"
        with open(text, "w") as f:
            n = 0
            for s in sentences:
                f.write(_line(s) + "\n")
                n += 1
        if n == 0:
            raise KenLMError("cannot train an n-gram model on no sentences")
        cmd = [str(lmplz), "-o", str(order), "-S", memory, "-T", tmp, "--discount_fallback"]
        with open(text) as src, open(arpa, "w") as dst:
            done = subprocess.run(cmd, stdin=src, stdout=dst, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-3:])
            raise KenLMError(f"lmplz failed (exit {done.returncode}): {tail}")
        return kenlm.Model(str(arpa))


def perplexity(lm, sentences: Iterable[str | Sequence[str]]) -> float:
    """exp of the mean negative log-probability per token, counting </s> (as our PPL does)."""
    log10, tokens = 0.0, 0
    for s in sentences:
        line = _line(s)
        log10 += lm.score(line, bos=True, eos=True)
        tokens += len(line.split()) + 1
    if tokens == 0:
        raise KenLMError("cannot score no sentences")
    return 10 ** (-log10 / tokens)
