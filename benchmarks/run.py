"""`make bench`: run every benchmarks/bench_*.py and write its JSON under results/bench/.

Each benchmark module exposes `main(out_dir: Path) -> dict`; the dict is written to
`<out_dir>/<name>.json` (atomically) and a one-line summary is logged. `--only NAME` runs one.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import time
from pathlib import Path

from pipeline.config import set_threads, setup_logging
from pipeline.io import write_json

log = logging.getLogger("benchmarks")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="results/bench")
    p.add_argument("--only", action="append", default=[], help="benchmark name, e.g. grader (repeatable)")
    args = p.parse_args()
    setup_logging()
    set_threads(1)
    out = Path(args.out)
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    for name in names:
        short = name.removeprefix("bench_")
        if args.only and short not in args.only:
            continue
        t0 = time.perf_counter()
        result = importlib.import_module(f"benchmarks.{name}").main(out)
        result.setdefault("wall_s", round(time.perf_counter() - t0, 2))
        write_json(out / f"{short}.json", result)
        log.info("%s: %s", short, {k: v for k, v in result.items() if not isinstance(v, (dict, list))})


if __name__ == "__main__":
    main()
