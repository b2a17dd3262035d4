"""The sandbox's cost per run against a plain subprocess of the same interpreter (issue #15 target: <= 2x).

Side by side, interleaved round by round so machine load hits all three alike: `subprocess.run(
[python, "-c", "print(1)"])`, `run_code("print(1)")` in-process (the pre-started interpreter is
warm), and the CLI `python -m grading.sandbox prog.py` (a fresh process: probe, pre-start, run).
Medians in ms; ratios are each to the plain subprocess of the same round set.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading.sandbox import isolation, run_code

ROUNDS = 30


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main(out_dir: Path) -> dict:
    root = Path(__file__).resolve().parents[1]
    iso = isolation()
    with tempfile.TemporaryDirectory() as d:
        prog = Path(d) / "prog.py"
        prog.write_text("print(1)\n")

        def plain():
            subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, check=True)

        def sandboxed():
            r = run_code("print(1)", timeout=10, require="none")
            assert (r.status, r.stdout) == ("ok", "1\n"), r

        def cli():
            subprocess.run([sys.executable, "-m", "grading.sandbox", str(prog)], capture_output=True,
                           check=True, cwd=root, env={"MATHPIPE_SANDBOX_REQUIRE": "none", "PATH": "/usr/bin:/bin"})

        for fn in (plain, sandboxed, cli):
            fn()  # warm-up
        times: dict[str, list[float]] = {"plain_subprocess": [], "run_code": [], "cli": []}
        for _ in range(ROUNDS):
            times["plain_subprocess"].append(_time(plain))
            times["run_code"].append(_time(sandboxed))
            times["cli"].append(_time(cli))
    med = {k: round(statistics.median(v), 2) for k, v in times.items()}
    return {
        "rounds": ROUNDS,
        "median_ms": med,
        "run_code_ratio": round(med["run_code"] / med["plain_subprocess"], 2),
        "cli_ratio": round(med["cli"] / med["plain_subprocess"], 2),
        "isolation": iso.summary(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(main(Path("results/bench")), indent=1))
