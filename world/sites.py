"""The domains of the generated web and how many pages each gets.

Paper §2.1's corpus loop needs structure to find: pure math domains (some in the seed, most not),
mixed domains where only some URL paths are math (a forum with /questions/ math and /jobs/ not, the
paper's mathoverflow.net/questions example), numeric decoy domains and ordinary prose. Domain sizes
are skewed (log-normal weights), and every mixed domain's math share lies between 25% and 60%, above
the paper's 10% domain-discovery threshold.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from world.pages import Site

MATH, MIXED, DECOY, PROSE = "math", "mixed", "decoy", "prose"
DOMAIN_SHARES = {MATH: 0.25, MIXED: 0.15, DECOY: 0.25}  # the rest is prose

# Each kind has a few layouts: (path, page kinds, is_math) per section; domains cycle through them.
LAYOUTS = {
    MATH: [
        [("problems", ("worked_problem", "homework_qa"), True), ("practice", ("problem_set", "answer_key"), True),
         ("notes", ("lecture_notes",), True)],
        [("questions", ("qa_thread", "homework_qa"), True),
         ("tagged", ("problem_set", "worked_problem", "homework_qa"), True)],
        [("lessons", ("lecture_notes", "worked_problem"), True),
         ("exercises", ("problem_set", "answer_key", "homework_qa"), True)],
        [("homework", ("homework_qa",), True), ("worksheets", ("answer_key",), True)],
    ],
    MIXED: [
        [("questions", ("qa_thread", "homework_qa"), True), ("jobs", ("jobs",), False),
         ("users", ("profile",), False)],
        [("courses", ("lecture_notes", "worked_problem", "answer_key"), True), ("campus", ("news",), False),
         ("events", ("news", "blog"), False)],
        [("math", ("worked_problem", "problem_set", "homework_qa"), True), ("travel", ("travel",), False),
         ("food", ("recipe", "blog"), False)],
    ],
    DECOY: [
        [("products", ("prices",), False), ("developers", ("code",), False)],
        [("results", ("scores",), False), ("news", ("news",), False)],
        [("timetables", ("timetable",), False)],
        [("recipes", ("recipe",), False)],
        [("docs", ("code",), False), ("deals", ("prices",), False)],
    ],
    PROSE: [
        [("news", ("news",), False), ("opinion", ("blog",), False)],
        [("blog", ("blog", "travel"), False)],
        [("reviews", ("review",), False)],
        [("travel", ("travel",), False), ("guides", ("travel",), False)],
    ],
}
_NAMES = {
    MATH: (["algebra", "math", "number", "proof", "equation", "fraction", "geometry", "calculus", "integer"],
           ["hub", "corner", "help", "lab", "notes", "den", "school", "forum", "works"], ["org", "net", "edu"]),
    MIXED: (["ask", "campus", "stack", "study", "talk", "learn", "city"],
            ["exchange", "board", "college", "point", "place", "square"], ["com", "org"]),
    DECOY: (["shop", "score", "metro", "kitchen", "dev", "deal", "sport", "transit", "price"],
            ["mart", "zone", "line", "daily", "base", "world", "center"], ["com", "net"]),
    PROSE: (["daily", "river", "green", "sunny", "urban", "quiet", "north", "happy", "local"],
            ["times", "post", "journal", "diary", "life", "voice", "herald", "view"], ["com", "net", "org"]),
}
_NAV = ["Home", "About", "Archive", "Topics", "Contact", "Help", "Blog", "Latest", "Popular", "Newsletter"]
_FOOTERS = ["Made with care by volunteers.", "Independent since 2009.", "Content licensed CC BY-SA.",
            "Powered by OpenPress.", "Questions? Write to the editors."]


@dataclass(frozen=True)
class Section:
    path: str
    kinds: tuple[str, ...]
    is_math: bool


@dataclass
class Domain:
    site: Site
    kind: str  # math / mixed / decoy / prose
    sections: list[Section]
    weight: float
    templates: tuple[str, ...] = ()  # the problem templates its math pages are about
    in_seed: bool = False
    pages: dict[str, int] | None = None  # section path -> number of pages

    @property
    def name(self) -> str:
        return self.site.domain


def _domain_names(rng: random.Random, kind: str, n: int) -> list[str]:
    first, second, tlds = _NAMES[kind]
    combos = [f"{a}{b}.{t}" for a in first for b in second for t in tlds]
    if n > len(combos):
        raise ValueError(f"world.web.domains asks for {n} {kind} domains; at most {len(combos)} names exist")
    return rng.sample(combos, n)


def make_domains(rng: random.Random, n_domains: int, templates: list[str], seed_fraction: float) -> list[Domain]:
    """The domains, in a fixed order: math, mixed, decoy, prose. The first math ones are the seed's."""
    counts = {k: max(1, round(n_domains * share)) for k, share in DOMAIN_SHARES.items()}
    counts[PROSE] = n_domains - sum(counts.values())
    if counts[PROSE] < 1:
        raise ValueError(f"world.web.domains = {n_domains} is too few; need at least 5")
    domains = []
    for kind, n in counts.items():
        for i, name in enumerate(_domain_names(rng, kind, n)):
            layout = LAYOUTS[kind][i % len(LAYOUTS[kind])]
            site = Site(name, name.split(".")[0].capitalize(), tuple(rng.sample(_NAV, rng.randint(4, 7))),
                        rng.choice(_FOOTERS), rng.choice(["dollar", "paren"]))
            focus = tuple(sorted(rng.sample(templates, min(len(templates), rng.randint(4, 7)))))
            domains.append(Domain(site, kind, [Section(*s) for s in layout], rng.lognormvariate(0, 0.6), focus))
    n_seed = max(1, round(counts[MATH] * seed_fraction))
    for d in [d for d in domains if d.kind == MATH][:n_seed]:
        d.in_seed = True
    return domains


def _share_out(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split `total` in proportion to `weights` (largest remainder), each at least `minimum`."""
    if not weights:
        return []
    base = [minimum] * len(weights)
    rest = total - minimum * len(weights)
    if rest < 0:
        raise ValueError(f"cannot give {len(weights)} domains {minimum} pages each out of {total}; "
                         "raise world.web.pages or lower world.web.domains")
    raw = [rest * w / sum(weights) for w in weights]
    out = [b + int(r) for b, r in zip(base, raw)]
    for i in sorted(range(len(raw)), key=lambda i: int(raw[i]) - raw[i])[: total - sum(out)]:
        out[i] += 1
    return out


def allocate_pages(rng: random.Random, domains: list[Domain], pages: int, math_fraction: float,
                   minimum: int = 4) -> None:
    """Set `Domain.pages`: `round(pages * math_fraction)` math pages in all, the rest non-math.

    The math pages are shared out over the pure math domains and the math paths of the mixed ones by
    domain weight (a mixed domain's weight counts half: only part of it is math); each mixed domain then
    gets non-math pages for a math share drawn from 25-60%, and the decoy and prose domains the rest. So a
    small `math_fraction` (the real web's few percent) shrinks the math sites, not the mixed sites' share.
    """
    n_math = round(pages * math_fraction)
    pure = [d for d in domains if d.kind == MATH]
    mixed = [d for d in domains if d.kind == MIXED]
    other = [d for d in domains if d.kind in (DECOY, PROSE)]
    math_counts = _share_out(n_math, [d.weight for d in pure] + [0.5 * d.weight for d in mixed], minimum)
    mixed_other = [max(minimum, round(m * (1 - share) / share))
                   for m, share in zip(math_counts[len(pure):], [rng.uniform(0.25, 0.6) for _ in mixed])]
    other_counts = _share_out(pages - n_math - sum(mixed_other), [d.weight for d in other], minimum)
    for d, n in list(zip(pure, math_counts)) + list(zip(other, other_counts)):
        d.pages = _split_sections(rng, d.sections, n)
    for d, m, n in zip(mixed, math_counts[len(pure):], mixed_other):
        d.pages = {**_split_sections(rng, [s for s in d.sections if s.is_math], m),
                   **_split_sections(rng, [s for s in d.sections if not s.is_math], n)}


def _split_sections(rng: random.Random, sections: list[Section], n: int) -> dict[str, int]:
    counts = {s.path: 0 for s in sections}
    for _ in range(n):
        counts[rng.choice(sections).path] += 1
    return counts
