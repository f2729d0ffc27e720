"""Ship the explorer's compare view for pairs of bundles: each bundle's atlas gets its side of the
pair's aligned layout (core.serving.atlas.add_aligned), so the first visitor's compare view needs no fit.

    python scripts/ship_aligned_map.py checkpoints/flickr8k-lagging checkpoints/flickr8k-vae-mine-infonce [--data-dir D]

With more than two bundles, the first is paired with each of the others. --prune then drops from
each named bundle the aligned layouts with bundles not named here (ones no longer shipped).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core  # noqa: E402
from core.serving.atlas import add_aligned, drop_aligned  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+", type=Path, help="the first bundle, then those to pair it with")
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument("--prune", action="store_true", help="then drop aligned layouts with bundles not named here")
    args = p.parse_args(argv)
    if len(args.bundles) < 2:
        p.error("name at least two bundles")
    first, *others = [core.load(b) for b in args.bundles]
    for other in others:
        start = time.perf_counter()
        add_aligned(first, other, args.data_dir)
        print(f"{first.path.name} + {other.path.name}: aligned layout shipped in {time.perf_counter() - start:.0f} s")
    if args.prune:
        for model, partners in ((first, others), *((o, [first]) for o in others)):
            dropped = drop_aligned(model.path, [m.fingerprint for m in partners])
            print(f"{model.path.name}: dropped {len(dropped)} aligned layout(s) with bundles not named")
    return 0


if __name__ == "__main__":
    sys.exit(main())
