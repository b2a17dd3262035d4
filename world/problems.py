"""The embedded default's problem family: sft / rl / test splits with verified gold answers.

    python -m world.problems --config config/tiny.yaml --out-dir results/tiny/world/problems

Stands in for the paper's SFT data (§3.1: CoT, PoT and tool-integrated solutions to GSM8K/MATH-style
problems), its RL questions (§4.2) and the GSM8K/MATH test sets (§3.2). GSM8K-like word problems come
from world/gsm.py, MATH-like symbolic ones from world/mathlike.py.

- Disjoint splits: the test splits are drawn first; a problem whose `near_key` (same numbers, same
  wording up to names and objects) is already taken is redrawn, so no test problem or near-copy of one
  is in sft or rl, and sft and rl do not share problems either. sft/rl problems that share a 10-gram
  with a test question (the paper's decontamination rule, §2.1) are redrawn as well: with one phrasing
  per operation and one-digit numbers, different problems often do, and the SFT stage would drop them.
- Verified answers: every PoT program and every tool code block is executed (world/execute.py); a
  problem whose PoT output differs from its gold answer, or whose code blocks print something other
  than the template computed, is skipped and counted (`rejected` in run.json). Tool solutions carry
  the real outputs.
- Test files use GSM8K's `{question, answer}` (`#### N`) and MATH500's
  `{problem, solution, answer, subject, level, unique_id}` schemas, so eval reads them with the loaders
  of the real benchmarks.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corpus.decontaminate import NgramMatcher
from grading.grader import grade_many
from pipeline.config import defaults_from_schema, load_config, settings_from, setup_logging, stage_parser
from pipeline.io import write_jsonl, write_run_record
from world import gsm, mathlike
from world.execute import BACKENDS, run_programs
from world.problem import GSM8K, MATH, Problem, near_key, pot_text, problem_text, tool_text

log = logging.getLogger(__name__)

FAMILIES: dict[str, dict[str, tuple[Callable, tuple[int, ...]]]] = {GSM8K: gsm.TEMPLATES, MATH: mathlike.TEMPLATES}
ALL_TEMPLATES = {**gsm.TEMPLATES, **mathlike.TEMPLATES}  # name -> (generator, supported step counts)
SPLITS = ("sft", "rl", "test_gsm8k", "test_math")
_MAX_MISSES = 40  # consecutive draws of taken problems before a (template, steps) cell counts as used up


@dataclass(frozen=True)
@defaults_from_schema("world.problems")
class ProblemSettings:
    """Sizes and difficulty of the problem family (config section `world.problems`; defaults and meanings
    in its schema)."""

    sft: int
    rl: int
    test_gsm8k: int
    test_math: int
    math_fraction: float  # share of MATH-like problems in sft and rl
    max_steps: int  # difficulty knob: steps per problem, 1..3
    max_number: int  # difficulty knob: largest operand a template draws
    templates: tuple[str, ...] | None  # which templates to use (None: all of both families)
    clean_ngram: int  # sft/rl share no n-gram of this many words with a test question (0: no check)
    clean_min_exact: int  # test texts shorter than clean_ngram words but this long match exactly
    executor: str  # world/execute.py backend
    exec_timeout: float
    exec_memory_mb: int

    def family_templates(self, family: str) -> list[str]:
        """The templates of `family` this config uses, in a fixed order."""
        return [t for t in FAMILIES[family] if self.templates is None or t in self.templates]

    @classmethod
    def from_config(cls, section: dict) -> ProblemSettings:
        settings = settings_from(cls, section)
        unknown = sorted(set(settings.templates or ()) - set(ALL_TEMPLATES))
        if unknown:
            raise ValueError(f"world.problems.templates: unknown {unknown}; known: {sorted(ALL_TEMPLATES)}")
        for family in FAMILIES:
            if not settings.family_templates(family) and (settings.test_gsm8k if family == GSM8K else settings.test_math):
                raise ValueError(f"world.problems.templates has no {family} template but test_{family} > 0")
        if not 1 <= settings.max_steps <= 3:
            raise ValueError(f"world.problems.max_steps must be 1..3, got {settings.max_steps}")
        if settings.max_number < 3:
            raise ValueError(f"world.problems.max_number must be >= 3, got {settings.max_number}")
        if settings.executor not in BACKENDS:
            raise ValueError(f"world.problems.executor must be one of {BACKENDS}, got {settings.executor!r}")
        return settings


class ProblemSampler:
    """Draws problems of one family uniformly over its (template, steps) cells, avoiding `forbidden` keys.

    With `unique=True` every drawn key joins `forbidden` (the set is shared between splits). A problem
    that `matcher` (a corpus.decontaminate.NgramMatcher) finds in its text is redrawn too, and counted
    in `ngram_rejects`. A cell whose draws keep being redrawn is retired; when every cell is retired
    the space is too small for the sizes asked and a clear error says so.
    """

    def __init__(self, rng: random.Random, family: str, templates: list[str], max_steps: int, max_number: int,
                 forbidden: set[str], unique: bool = True, matcher=None):
        self.rng, self.family, self.max_number = rng, family, max_number
        self.forbidden, self.unique, self.matcher = forbidden, unique, matcher
        self.ngram_rejects = 0
        self.cells = [(name, ALL_TEMPLATES[name][0], steps) for name in templates
                      for steps in ALL_TEMPLATES[name][1] if steps <= max_steps]
        self.misses: Counter = Counter()

    def draw(self) -> Problem:
        while self.cells:
            cell = self.rng.choice(self.cells)
            name, fn, steps = cell
            problem = fn(self.rng, steps, self.max_number)
            key = near_key(problem.question)
            shares_ngram = False
            if key not in self.forbidden and self.matcher is not None:
                shares_ngram = self.matcher.find(problem_text(problem)) is not None
                self.ngram_rejects += shares_ngram
            if key not in self.forbidden and not shares_ngram:
                if self.unique:
                    self.forbidden.add(key)
                self.misses[cell[0], steps] = 0
                return problem
            self.misses[name, steps] += 1
            if self.misses[name, steps] >= _MAX_MISSES:
                log.info("%s with %d steps: no new problems after %d draws; retiring it", name, steps, _MAX_MISSES)
                self.cells.remove(cell)
        raise ValueError(f"{self.family}: every template is used up ({len(self.forbidden)} problems taken); "
                         "ask for fewer problems or raise world.problems.max_number / max_steps")

    def sample(self, n: int) -> list[Problem]:
        return [self.draw() for _ in range(n)]


def test_matcher(texts: list[str], n: int, min_exact: int):
    """The corpus stage's decontamination index (paper §2.1) over test texts; None when n is 0."""
    if n <= 0:
        return None
    return NgramMatcher.from_texts((("world_test", t) for t in texts), n=n, min_exact=min(min_exact, n))


def draw_splits(settings: ProblemSettings, seed: int) -> tuple[dict[str, list[Problem]], dict[str, int]]:
    """All four splits, test first, and the n-gram redraws per split.

    Each split has its own RNG stream, so resizing sft leaves test as is. sft and rl problems are
    redrawn when they share a `clean_ngram`-gram with a test question, the rule the SFT and corpus
    stages decontaminate with, so that decontamination finds nothing to drop in them.
    """
    taken: set[str] = set()

    def sampler(split: str, family: str, matcher=None) -> ProblemSampler:
        rng = random.Random(f"{seed}:world.problems:{split}:{family}")
        return ProblemSampler(rng, family, settings.family_templates(family), settings.max_steps,
                              settings.max_number, taken, matcher=matcher)

    splits = {
        "test_gsm8k": sampler("test", GSM8K).sample(settings.test_gsm8k),
        "test_math": sampler("test", MATH).sample(settings.test_math),
    }
    matcher = test_matcher([p.question for s in ("test_gsm8k", "test_math") for p in splits[s]],
                           settings.clean_ngram, settings.clean_min_exact)
    redraws = {}
    for split in ("sft", "rl"):
        n = getattr(settings, split)
        n_math = round(n * settings.math_fraction)
        gsm_sampler, math_sampler = sampler(split, GSM8K, matcher), sampler(split, MATH, matcher)
        problems = gsm_sampler.sample(n - n_math) + math_sampler.sample(n_math)
        random.Random(f"{seed}:world.problems:{split}:order").shuffle(problems)
        splits[split] = problems
        redraws[split] = gsm_sampler.ngram_rejects + math_sampler.ngram_rejects
    return splits, redraws


def verify(splits: dict[str, list[Problem]], settings: ProblemSettings) -> tuple[dict[str, list[tuple[Problem, str]]], Counter]:
    """Run every PoT program and tool code block; keep (problem, tool text) pairs whose outputs check out."""
    programs = []
    for problems in splits.values():
        for p in problems:
            programs.append(p.program)
            programs.extend(step.code for step in p.tool_steps)
    results = iter(run_programs(programs, settings.executor, settings.exec_timeout, settings.exec_memory_mb))
    kept: dict[str, list[tuple[Problem, str]]] = {}
    rejected: Counter = Counter()
    for split, problems in splits.items():
        kept[split] = []
        for p in problems:
            pot = next(results)
            tools = [next(results) for _ in p.tool_steps]
            if pot.status != "ok" or pot.stdout.strip() != p.answer:
                rejected[f"{p.template}: PoT printed {pot.stdout.strip()!r} ({pot.status}), gold {p.answer!r}"] += 1
                continue
            bad = [(s, r) for s, r in zip(p.tool_steps, tools) if r.status != "ok" or r.stdout.strip() != s.expect]
            if bad:
                step, res = bad[0]
                rejected[f"{p.template}: tool code {step.code!r} printed {res.stdout.strip()!r}, expected {step.expect!r}"] += 1
                continue
            kept[split].append((p, tool_text(p, [r.stdout.strip() for r in tools])))
    for reason, count in rejected.items():
        log.warning("rejected %d problem(s): %s", count, reason)
    return kept, rejected


def grader_disagreements(problems: list[Problem]) -> int:
    """How many gold CoTs grading.grader does not grade correct against their own gold answer. Zero
    means the grader extracts and parses every gold answer form we write."""
    verdicts = grade_many([(p.cot, p.answer) for p in problems])
    bad = [(p.answer, v.status) for p, v in zip(problems, verdicts) if not v.correct]
    for answer, status in bad[:10]:
        log.warning("grading.grader does not accept gold answer %r from its own solution (%s)", answer, status)
    return len(bad)


def problem_record(p: Problem, problem_id: str, tool: str) -> dict:
    """The problem record of docs/CONTRACTS.md (plus `template`, for per-template analysis)."""
    return {"problem_id": problem_id, "family": p.family, "subject": p.subject, "level": p.level,
            "question": p.question, "answer": p.answer, "cot": p.cot, "pot": pot_text(p.program),
            "tool": tool, "template": p.template}


def gsm8k_record(p: Problem) -> dict:
    return {"question": p.question, "answer": p.gsm_solution}


def math500_record(p: Problem, index: int) -> dict:
    slug = p.subject.lower().replace(" ", "_")
    return {"problem": p.question, "solution": p.cot, "answer": p.answer, "subject": p.subject,
            "level": p.level, "unique_id": f"world/{slug}/{index}.json"}


def split_records(kept: dict[str, list[tuple[Problem, str]]]) -> dict[str, list[dict]]:
    records = {}
    for split in ("sft", "rl"):
        records[split] = [problem_record(p, f"{'gsm' if p.family == GSM8K else 'math'}-{split}-{i:06d}", tool)
                          for i, (p, tool) in enumerate(kept[split])]
    records["test_gsm8k"] = [gsm8k_record(p) for p, _ in kept["test_gsm8k"]]
    records["test_math"] = [math500_record(p, i) for i, (p, _) in enumerate(kept["test_math"])]
    return records


def generate(settings: ProblemSettings, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """Draw, verify and format every split. Returns (records per split, stats)."""
    t0 = time.perf_counter()
    splits, ngram_redraws = draw_splits(settings, seed)
    t_draw = time.perf_counter() - t0
    kept, rejected = verify(splits, settings)
    t_exec = time.perf_counter() - t0 - t_draw
    test_problems = [p for s in ("test_gsm8k", "test_math") for p, _ in kept[s]]
    stats = {
        "sizes": {s: len(kept[s]) for s in SPLITS},
        "rejected": sum(rejected.values()),
        "rejected_reasons": dict(rejected),
        "ngram_redraws": ngram_redraws,
        "grader_disagreements_test": grader_disagreements(test_problems),
        "templates": {s: dict(sorted(Counter(p.template for p, _ in kept[s]).items())) for s in SPLITS},
        "levels": {s: dict(sorted(Counter(p.level for p, _ in kept[s]).items())) for s in SPLITS},
        "draw_s": round(t_draw, 3),
        "execute_s": round(t_exec, 3),
    }
    return split_records(kept), stats


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("Generate the embedded default's problem family (sft / rl / test splits).")
    parser.add_argument("--out-dir", required=True, help="output folder")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(args.config, args.overrides)
    out = Path(args.out_dir)
    settings = ProblemSettings.from_config(cfg["world"]["problems"])
    seed = world_seed(cfg)
    t0 = time.perf_counter()
    records, stats = generate(settings, seed)
    for split, rows in records.items():
        write_jsonl(out / f"{split}.jsonl", rows)
    stats["wall_s"] = round(time.perf_counter() - t0, 3)
    write_run_record(out, "world.problems", cfg, stats=stats)
    log.info("wrote %s to %s in %.1fs (rejected %d)", stats["sizes"], out, stats["wall_s"], stats["rejected"])


def world_seed(cfg: dict) -> int:
    """`world.seed` when set, else the global `seed`."""
    seed = cfg.get("world", {}).get("seed")
    return int(cfg["seed"] if seed is None else seed)


if __name__ == "__main__":
    main()
