"""A campaign's results packed into a few files of bounded size, for a machine that brings back only
a few files (a lent GPU returns at most 8 files, 64 MiB in all), and unpacked on the other side.

    python scripts/campaign_pack.py pack OUT DEST [--mib 16] [--files 8]
    python scripts/campaign_pack.py unpack DEST_OF_PACK FOLDER
    python -m core.reproduce --checkpoints FOLDER

OUT is a `python -m core.campaign run --out`. The pack holds every run's config, vocabulary,
per-epoch log, figures, evaluation and samples, then the best bundle of each system as float16
(VAE-MINE and LaggingVAE first) while the parts stay within --files files of --mib MiB; it names
what it left out. This is tooling for one kind of machine, apart from the library on purpose.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.commands.cli import run_cli  # noqa: E402
from core.library.checkpoint import (
    CONFIG,
    EVALUATION,
    LOG,
    METRICS,
    OUTPUT,
    PROBE,
    SAMPLES,
    VOCAB,
    WEIGHTS,  # noqa: E402
    load_tensors,
    save_tensors,
)
from core.library.errors import (
    SettingError,  # noqa: E402
    VaeMineError,  # noqa: E402
)
from core.library.evaluation import weights_digest  # noqa: E402
from core.library.objectives import display_name  # noqa: E402

PACK_NAME = "campaign.tar.gz"
FIRST = ("vae-mine", "lagging")  # the explorer's pair: packed before the other bundles


class Parts(io.RawIOBase):
    """A byte stream written as DIR/NAME.00, .01, ... of at most `size` bytes each."""

    def __init__(self, folder: Path, name: str, size: int):
        self.folder, self.name, self.size = folder, name, size
        self.paths: list[Path] = []
        self.file = None
        self.left = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            if self.left == 0:
                if self.file:
                    self.file.close()
                self.paths.append(self.folder / f"{self.name}.{len(self.paths):02d}")
                self.file, self.left = open(self.paths[-1], "wb"), self.size
            n = min(self.left, len(view) - done)
            self.file.write(view[done : done + n])
            done, self.left, self.total = done + n, self.left - n, self.total + n
        return done

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None
        super().close()


def pack(out: Path, dest: Path, part_bytes: int, max_files: int) -> list[Path]:
    """Write the campaign in OUT as gzip'd tar parts into `dest` (see the module docstring); returns them."""
    if not (out / "campaign.json").is_file():
        raise VaeMineError(f"{out} holds no campaign.json: pack the --out of a `python -m core.campaign run`")
    rows = json.loads((out / "campaign.json").read_text())["runs"]
    runs = [out / r["run"] for r in rows]
    best = {r["system"]: out / r["run"] for r in rows if r["best_of_system"]}
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob(f"{PACK_NAME}.*"):
        old.unlink()
    budget = part_bytes * max_files
    records = [out / n for n in ("campaign.md", "campaign.json")] + [
        out / "vae-mine" / n for n in ("sweep.md", "sweep.csv", "best.json")
    ]
    records += [folder / n for folder in runs for n in (CONFIG, VOCAB, LOG, METRICS, EVALUATION, SAMPLES, OUTPUT)]
    records = [f for f in records if f.is_file() and not f.is_symlink()]
    size = sum(f.stat().st_size for f in records)
    if size + (1 << 18) > budget:  # as written (before compression), so a bound
        raise VaeMineError(
            f"the runs' records alone take {size / 2**20:.1f} MiB, over the pack's {budget / 2**20:.0f} MiB: "
            f"raise --mib or --files, or keep fewer --fppl-samples"
        )
    parts = Parts(dest, PACK_NAME, part_bytes)
    left_out = []
    # gzip level 1: float16 weights barely compress, and the machine's minutes are dear
    with (
        gzip.GzipFile(fileobj=parts, mode="wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tar,
    ):
        for f in records:
            tar.add(f, arcname=str(f.relative_to(out)))
        order = [s for s in FIRST if s in best] + [s for s in best if s not in FIRST]
        for system in order:
            folder = best[system]
            name = str(folder.relative_to(out))
            half = out / ".pack" / name / WEIGHTS
            half.parent.mkdir(parents=True, exist_ok=True)
            save_tensors(
                half,
                load_tensors(folder / WEIGHTS),
                torch.float16,
                metadata={"source_sha256": weights_digest(folder), "source": "float16 copy (campaign_pack)"},
            )
            size = half.stat().st_size + ((folder / PROBE).stat().st_size if (folder / PROBE).is_file() else 0)
            if parts.total + size + (1 << 18) > budget:  # what gzip holds back, and headers: 256 KiB is ample
                left_out.append(f"{display_name(system)} ({name}, {size / 2**20:.1f} MiB)")
            else:
                tar.add(half, arcname=f"{name}/{WEIGHTS}")
                if (folder / PROBE).is_file():
                    tar.add(folder / PROBE, arcname=f"{name}/{PROBE}")
            half.unlink()
    parts.close()
    shutil.rmtree(out / ".pack", ignore_errors=True)
    if len(parts.paths) > max_files:
        for path in parts.paths:
            path.unlink()
        raise VaeMineError(f"the pack took {len(parts.paths)} files, over --files {max_files}: raise --mib")
    left = f"; left out: {', '.join(left_out)}" if left_out else ""
    print(f"pack: {len(parts.paths)} files, {parts.total / 2**20:.1f} MiB in {dest}{left}")
    return parts.paths


class Joined(io.RawIOBase):
    """The parts read back as one stream."""

    def __init__(self, paths: list[Path]):
        self.files = [open(p, "rb") for p in paths]

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while self.files:
            n = self.files[0].readinto(buf)
            if n:
                return n
            self.files.pop(0).close()
        return 0


def unpack(folder: Path, dest: Path) -> Path:
    paths = sorted(folder.glob(f"{PACK_NAME}.[0-9][0-9]"))
    if not paths:
        raise VaeMineError(f"no {PACK_NAME}.NN parts in {folder}")
    numbers = [int(p.suffix[1:]) for p in paths]
    if numbers != list(range(len(paths))):
        raise VaeMineError(f"the parts in {folder} are not {PACK_NAME}.00 to .{len(paths) - 1:02d}: one is missing")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BufferedReader(Joined(paths)), mode="r|gz") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise VaeMineError(f"the pack in {folder} is damaged or incomplete: {e}") from None
    print(f"unpacked {len(paths)} parts into {dest}; next: python -m core.reproduce --checkpoints {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/campaign_pack.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("pack", help="write a campaign's results as gzip'd tar parts")
    k.add_argument("out", type=Path, help="the campaign's --out")
    k.add_argument("dest", type=Path, help="folder for campaign.tar.gz.NN")
    k.add_argument("--mib", type=float, default=16.0, help="largest part, MiB (default 16)")
    k.add_argument("--files", type=int, default=8, help="most parts (default 8)")
    u = sub.add_parser("unpack", help="rebuild a campaign's folder from its pack")
    u.add_argument("folder", type=Path, help="the folder holding campaign.tar.gz.NN")
    u.add_argument("dest", type=Path)

    def body(args):
        if args.command == "unpack":
            unpack(args.folder, args.dest)
            return 0
        if not args.mib > 0 or args.files < 1:
            raise SettingError(f"--mib must be above 0 and --files at least 1, got {args.mib} and {args.files}")
        pack(args.out, args.dest, int(args.mib * 2**20), args.files)
        return 0

    return run_cli(p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
