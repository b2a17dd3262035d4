"""Math-Verify's public test suite as data, and our grader scored on it beside Math-Verify.

Two commands:

    python -m benchmarks.mathverify_cases extract --repo /work/.mirror/huggingface+Math-Verify/repo
        reads the `@pytest.mark.parametrize` tables of the repository's tests/*.py with `ast` (no code
        of theirs is imported or run) and writes benchmarks/data/mathverify_cases.jsonl: one record per
        literal (gold, prediction, expected) row, with the file, test name, line, the commit, and any
        non-default verifier setting the row was written for (`precision`, `strict`,
        `allow_set_relation_comp`) and the test's `match_types`.
    python -m benchmarks.mathverify_cases score
        grades every default-configuration row with grading.grader and with Math-Verify (as the test
        suite calls it) and prints accuracy, false accepts and misses for both.

Rows kept out of the default set ("config-only variants"): a row whose expected verdict holds only
under a non-default setting (`strict=False`, `allow_set_relation_comp=True`, a rounding precision
other than the default 6). Rows that are not literals (an f-string) are skipped and counted.

The gold side of a row is free text, as Math-Verify parses it (`$9$`, `\\boxed{...}`, `10/9`); our
grader takes a final answer, so the gold answer is what `extract_answer` finds in it (a row whose
gold has no extractable answer is graded against the stripped text).
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import subprocess
from pathlib import Path

log = logging.getLogger("benchmarks.mathverify_cases")

DATA = Path(__file__).resolve().parent / "data" / "mathverify_cases.jsonl"
_DEFAULTS = {"precision": 6, "strict": True, "allow_set_relation_comp": False}
_EXPECTED_NAMES = ("expected", "result")


# ---------------------------------------------------------------------------------------- extract


def _literal(node: ast.AST):
    """The value of a literal node; ValueError for anything else (f-strings, calls)."""
    return ast.literal_eval(node)


def _match_types(func: ast.FunctionDef) -> list[str] | None:
    """`match_types=[...]` of the first call in the test body that passes one, else None."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "match_types":
                    try:
                        return list(_literal(kw.value))
                    except ValueError:
                        return None
    return None


def extract_file(source: str, rel: str, commit: str) -> tuple[list[dict], list[str]]:
    """Records of one test file's source and "file:line: reason" for each row that was skipped."""
    records, skipped = [], []
    tree = ast.parse(source, filename=rel)
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        for deco in func.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in _literal(deco.args[0]).split(",")]
            if "gold" not in names or "pred" not in names:
                skipped.append(f"{rel}:{deco.lineno}: {func.name} has no gold/pred columns ({names})")
                continue
            expected_name = next(n for n in names if n in _EXPECTED_NAMES)
            for row in deco.args[1].elts:
                try:
                    values = dict(zip(names, _literal(row)))
                except ValueError:
                    skipped.append(f"{rel}:{row.lineno}: {func.name}: row is not a literal")
                    continue
                config = {k: v for k, v in values.items() if k not in ("gold", "pred", expected_name)}
                records.append({
                    "source": f"huggingface/Math-Verify@{commit}:{rel}:{row.lineno}",
                    "test": func.name, "gold": values["gold"], "pred": values["pred"],
                    "expected": bool(values[expected_name]), "config": config,
                    "match_types": _match_types(func),
                    "default_config": all(_DEFAULTS.get(k) == v for k, v in config.items()),
                })
    return records, skipped


def extract(repo: Path, out: Path) -> dict:
    commit = subprocess.run(["git", f"--git-dir={repo}", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    listing = subprocess.run(["git", f"--git-dir={repo}", "ls-tree", "--name-only", "HEAD", "tests/"],
                             capture_output=True, text=True, check=True).stdout.split()
    records, skipped = [], []
    out.parent.mkdir(parents=True, exist_ok=True)
    for rel in sorted(p for p in listing if p.endswith(".py")):
        text = subprocess.run(["git", f"--git-dir={repo}", "show", f"HEAD:{rel}"], capture_output=True,
                              text=True, check=True).stdout
        r, s = extract_file(text, rel, commit)
        records += r
        skipped += s
    with out.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    summary = {"commit": commit, "records": len(records),
               "default_config": sum(r["default_config"] for r in records), "skipped": skipped}
    log.info("%s", summary)
    return summary


# ---------------------------------------------------------------------------------------- score


def load_cases(path: Path = DATA, default_only: bool = True) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["default_config"] or not default_only]


def gold_answer(gold_text: str) -> str:
    """The final answer our grader compares against: what extraction finds in Math-Verify's gold text."""
    from grading.answer_extraction import extract_answer

    return extract_answer(gold_text) or gold_text.strip()


def score_ours(cases: list[dict]) -> list[bool]:
    from grading.grader import grade_many

    verdicts = grade_many([(c["pred"], gold_answer(c["gold"])) for c in cases], workers=1, timeout=5.0)
    return [v.correct for v in verdicts]


def score_math_verify(cases: list[dict]) -> list[bool]:
    # math_verify is imported here only: it is a comparison baseline, not a dependency of the grader.
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    out = []
    for c in cases:
        kinds = c["match_types"] or ["latex", "expr"]
        targets = [LatexExtractionConfig(boxed_match_priority=0) if k == "latex" else ExprExtractionConfig()
                   for k in kinds]
        cfg = c["config"]
        try:
            ok = verify(parse(c["gold"], targets), parse(c["pred"], targets),
                        float_rounding=cfg.get("precision", 6), strict=cfg.get("strict", True),
                        allow_set_relation_comp=cfg.get("allow_set_relation_comp", False))
        except Exception as e:  # a grader that raises scores the row as not equal
            log.debug("math-verify raised on %r: %s", c["gold"], e)
            ok = False
        out.append(bool(ok))
    return out


def summarize(name: str, cases: list[dict], got: list[bool]) -> dict:
    wrong = [(c, g) for c, g in zip(cases, got) if g != c["expected"]]
    return {"grader": name, "cases": len(cases), "accuracy": round(1 - len(wrong) / len(cases), 4),
            "false_accepts": sum(g for _, g in wrong), "misses": sum(not g for _, g in wrong),
            "wrong": [{"source": c["source"].rsplit(":", 2)[-2:], "gold": c["gold"], "pred": c["pred"][:200],
                       "expected": c["expected"]} for c, _ in wrong]}


def score(path: Path = DATA) -> dict:
    cases = load_cases(path)
    ours, mv = summarize("grading.grader", cases, score_ours(cases)), summarize("math-verify", cases,
                                                                                 score_math_verify(cases))
    return {"ours": ours, "math_verify": mv}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract", help="write benchmarks/data/mathverify_cases.jsonl from a Math-Verify git dir")
    ex.add_argument("--repo", type=Path, required=True, help="git directory of huggingface/Math-Verify")
    ex.add_argument("--out", type=Path, default=DATA)
    sc = sub.add_parser("score", help="grade the default-configuration rows with ours and Math-Verify")
    sc.add_argument("--data", type=Path, default=DATA)
    sc.add_argument("--show-wrong", action="store_true", help="list every row a grader got wrong")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cmd == "extract":
        extract(args.repo, args.out)
        return
    result = score(args.data)
    for side in ("ours", "math_verify"):
        r = result[side]
        log.info("%-15s %d cases  accuracy %.1f%%  false accepts %d  misses %d", r["grader"], r["cases"],
                 100 * r["accuracy"], r["false_accepts"], r["misses"])
        if args.show_wrong:
            for w in r["wrong"]:
                log.info("   %s", json.dumps(w, ensure_ascii=False))


if __name__ == "__main__":
    main()
