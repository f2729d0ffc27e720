"""Word vocabulary: built from training sentences, saved as one word a line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import CheckpointError, SettingError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


class Vocab:
    """Specials first (<pad>=0, <s>=1, </s>=2, <unk>=3), then words by falling frequency."""

    pad, bos, eos, unk = 0, 1, 2, 3

    def __init__(self, words: Sequence[str]):
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise SettingError(f"a vocabulary must start with {SPECIALS}")
        self.itos = list(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise SettingError("vocabulary has duplicate words")

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], max_size: int = 20_000) -> Vocab:
        """At most `max_size` words besides the specials; ties keep first-seen order (Counter is ordered)."""
        counts = Counter(w for s in sentences for w in s if w not in SPECIALS)
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable sort keeps first-seen order on ties
        return cls(list(SPECIALS) + [w for w, _ in ranked[:max_size]])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(w, self.unk) for w in tokens]

    def unknown(self, tokens: Sequence[str]) -> list[str]:
        """Tokens that will be read as <unk> (a literal <unk> in the text is not reported)."""
        return [w for w in tokens if w not in self.stoi]

    def words(self, ids: Iterable[int]) -> list[str]:
        """Ids to words, stopping at </s> and leaving out <s> and <pad>."""
        out = []
        for i in ids:
            if i == self.eos:
                break
            if i not in (self.bos, self.pad):
                out.append(self.itos[i])
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.itos) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"missing vocabulary file: {path}")
        try:
            words = path.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise CheckpointError(f"cannot read vocabulary file {path}: {e}") from None
        if words and words[-1] == "":
            words.pop()
        try:
            return cls(words)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from None
