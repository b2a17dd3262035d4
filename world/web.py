"""The embedded default's web: WARC shards of HTML pages, their ground-truth labels and a math seed.

    python -m world.web --config config/tiny.yaml --test-gsm8k T.jsonl --test-math M.jsonl --out-dir results/tiny/world/web

Stands in for Common Crawl and OpenWebMath in the corpus loop of paper §2.1. The sites come from
world/sites.py (pure math, mixed, decoy and prose domains), the content from world/pages.py,
world/drills.py (worked arithmetic: answer keys, times tables, "Question:/Answer:" homework pages) and
world/prose.py. On top of the original pages:
- exact URL duplicates: a page crawled again in another snapshot (same URL, new record);
- near-duplicates: the same content under /print/ with edited boilerplate and dates;
- contaminated pages: math pages that quote test problems verbatim (the decontamination target);
- a seed of math pages' text from only the first `seed_domain_fraction` of the math domains, so
  later rounds must discover the rest (paper §2.1, domain discovery).

Writes `shard-{i:04d}.warc.gz` (world/warc.py), `labels.jsonl` (one line per WARC response record:
url, is_math, domain, dup_cluster, contaminated, plus crawl, shard, record_id, page_kind, path_kind,
in_seed, dup_kind, templates) and `seed.jsonl` (`{url, text}`). The pipeline never reads the labels;
tests and benchmarks score the corpus stage against them. Math pages never show a test problem or a
near-copy of one, except the contaminated pages.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.config import defaults_from_schema, load_config, settings_from, setup_logging, stage_parser
from pipeline.io import atomic_path, read_jsonl, write_jsonl, write_run_record
from world.drills import DRILL_KINDS, drill_content
from world.pages import TOPICS, lecture_notes, problem_set, qa_thread, render_html, slug, worked_problem
from world.problem import Problem, near_key, problem_text
from world.problems import ALL_TEMPLATES, FAMILIES, ProblemSettings, test_matcher, world_seed
from world.prose import NONMATH_KINDS, Content
from world.sites import Domain, Section, allocate_pages, make_domains
from world.warc import WebRecord, write_warc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
@defaults_from_schema("world.web")
class WebSettings:
    """Size and make-up of the web (config section `world.web`; defaults and meanings in its schema)."""

    pages: int  # original pages, before duplicates and contaminated pages
    domains: int
    shards: int
    math_fraction: float
    seed_domain_fraction: float
    seed_pages: int
    url_dup_rate: float
    near_dup_rate: float
    contaminated_pages: int
    crawls: tuple[str, ...]

    @classmethod
    def from_config(cls, section: dict) -> WebSettings:
        s = settings_from(cls, section)
        for c in s.crawls:
            crawl_date(c)  # raises on a malformed name
        if s.shards < 1 or s.pages < s.domains:
            raise ValueError(f"world.web: need shards >= 1 and pages >= domains, got {s.shards}, {s.pages}, {s.domains}")
        return s


@dataclass
class Page:
    url: str
    domain: Domain
    section: Section
    content: Content
    posted: datetime
    crawl: int
    templates: list[str] = field(default_factory=list)
    contaminated: bool = False
    cluster: str | None = None


def crawl_date(name: str) -> datetime:
    """`CC-MAIN-2024-10` -> Monday of ISO week 10 of 2024 (UTC), when that crawl started."""
    try:
        _, _, year, week = name.split("-")
        return datetime.fromisocalendar(int(year), int(week), 1).replace(tzinfo=UTC)
    except ValueError as e:
        raise ValueError(f"crawl name {name!r}: expected CC-MAIN-YYYY-WW") from e


class MathDrawer:
    """Fresh problems of a given template that are neither a test problem's near-copy (`near_key`) nor
    share an n-gram with a test question or solution (`matcher`, the corpus stage's decontamination rule),
    so the corpus stage's decontamination has only the contaminated pages to find."""

    def __init__(self, rng: random.Random, forbidden: set[str], max_steps: int, max_number: int, matcher=None):
        self.rng, self.forbidden, self.max_steps, self.max_number = rng, forbidden, max_steps, max_number
        self.matcher = matcher
        self.ngram_rejects = 0

    def draw(self, template: str) -> Problem:
        fn, supported = ALL_TEMPLATES[template]
        steps_choices = [s for s in supported if s <= self.max_steps] or [min(supported)]
        for _ in range(200):
            p = fn(self.rng, self.rng.choice(steps_choices), self.max_number)
            if near_key(p.question) in self.forbidden:
                continue
            if self.matcher is not None and self.matcher.find(problem_text(p)) is not None:
                self.ngram_rejects += 1
                continue
            return p
        raise ValueError(f"{template}: every draw is a test problem or shares an n-gram with one; "
                         "the difficulty settings leave no room")


def math_content(rng: random.Random, kind: str, domain: Domain, drawer: MathDrawer) -> tuple[Content, list[str]]:
    style = domain.site.math_style
    if kind in DRILL_KINDS:
        return drill_content(rng, kind, domain.templates, style, drawer.draw)
    template = rng.choice(domain.templates)
    if kind == "worked_problem":
        return worked_problem(rng, drawer.draw(template), style), [template]
    if kind == "problem_set":
        items = [drawer.draw(template) for _ in range(rng.randint(3, 5))]
        return problem_set(rng, TOPICS[template][0], [(p.question, p.cot) for p in items], style), [template]
    if kind == "qa_thread":
        p = drawer.draw(template)
        return qa_thread(rng, p.question, p.cot, style), [template]
    if kind == "lecture_notes":
        examples = [drawer.draw(template) for _ in range(rng.randint(1, 2))]
        return lecture_notes(rng, template, examples, style, mathml=rng.random() < 0.5), [template]
    raise ValueError(f"unknown math page kind {kind!r}")


def plan_pages(rng: random.Random, domains: list[Domain], settings: WebSettings, drawer: MathDrawer,
               test_items: list[tuple[str, str]]) -> list[Page]:
    """Original and contaminated pages with their content, URLs, dates and crawls."""
    base = crawl_date(settings.crawls[0])
    pages: list[Page] = []
    ids = {d.name: iter(rng.sample(range(1000, 99999), sum(d.pages.values()) + settings.contaminated_pages))
           for d in domains}

    def add(domain: Domain, section: Section, content: Content, templates: list[str], contaminated=False) -> None:
        url = f"https://{domain.name}/{section.path}/{next(ids[domain.name])}/{slug(content.title)}"
        posted = base - timedelta(days=rng.randint(20, 1500), seconds=rng.randint(0, 86399))
        pages.append(Page(url, domain, section, content, posted, rng.randrange(len(settings.crawls)),
                          templates, contaminated))

    for d in domains:
        for section in d.sections:
            for _ in range(d.pages.get(section.path, 0)):
                kind = rng.choice(section.kinds)
                if section.is_math:
                    content, templates = math_content(rng, kind, d, drawer)
                else:
                    content, templates = NONMATH_KINDS[kind](rng), []
                add(d, section, content, templates)
    math_sections = [(d, s) for d in domains for s in d.sections if s.is_math]
    for _ in range(settings.contaminated_pages if test_items else 0):
        d, s = rng.choice(math_sections)
        quoted = rng.sample(test_items, min(len(test_items), rng.randint(1, 3)))
        # Verbatim: "$" math is kept as the benchmark writes it, whatever the site's own style.
        if "qa_thread" in s.kinds or len(quoted) == 1:
            content = qa_thread(rng, quoted[0][0], quoted[0][1], "dollar")
        else:
            content = problem_set(rng, "review problems", quoted, "dollar")
        add(d, s, content, [], contaminated=True)
    return pages


def add_duplicates(rng: random.Random, pages: list[Page], settings: WebSettings) -> list[tuple[Page, str, int]]:
    """(page, dup_kind, crawl) for every record: originals, URL re-crawls and /print/ near-duplicates."""
    records = [(p, "original", p.crawl) for p in pages]
    n_crawls = len(settings.crawls)
    for i, p in enumerate(rng.sample(pages, round(len(pages) * settings.url_dup_rate))):
        p.cluster = f"dup-{i:05d}"
        records.append((p, "url_dup", (p.crawl + 1) % n_crawls))
    offset = round(len(pages) * settings.url_dup_rate)
    for i, p in enumerate(rng.sample(pages, round(len(pages) * settings.near_dup_rate))):
        p.cluster = p.cluster or f"dup-{offset + i:05d}"
        records.append((p, "near_dup", rng.randrange(n_crawls)))
    return records


def build_web(settings: WebSettings, seed: int, test_items: list[tuple[str, str]], max_steps: int,
              max_number: int, templates: list[str] | None = None, clean_ngram: int = 20,
              clean_min_exact: int = 3) -> tuple[list[list[WebRecord]], list[dict], list[dict], dict]:
    """Everything but the writing: (records per shard, labels in record order, seed rows, stats).

    `templates` (default: all) are the problem templates the math pages are about; pass the problem
    family's, so the web's math is the downstream task's math. Clean math pages share no
    `clean_ngram`-gram with a test question or solution (0: no such check).
    """
    rng = random.Random(f"{seed}:world.web")
    domains = make_domains(rng, settings.domains, sorted(templates or ALL_TEMPLATES), settings.seed_domain_fraction)
    allocate_pages(rng, domains, settings.pages, settings.math_fraction)
    matcher = test_matcher([t for item in test_items for t in item], clean_ngram, clean_min_exact)
    drawer = MathDrawer(rng, {near_key(q) for q, _ in test_items}, max_steps, max_number, matcher)
    pages = plan_pages(rng, domains, settings, drawer, test_items)
    by_domain: dict[str, list[str]] = {}
    for p in pages:
        by_domain.setdefault(p.domain.name, []).append(p.url)
    html_of = {}
    for p in pages:
        related = rng.sample(by_domain[p.domain.name], min(3, len(by_domain[p.domain.name])))
        html_of[p.url] = render_html(p.domain.site, p.content, p.posted, related)
    records = add_duplicates(rng, pages, settings)
    rng.shuffle(records)
    shards: list[list[WebRecord]] = [[] for _ in range(settings.shards)]
    labels = []
    for i, (p, dup_kind, crawl) in enumerate(records):
        shard = i * settings.shards // len(records)
        url, html = p.url, html_of[p.url]
        if dup_kind == "near_dup":
            url = url.replace(f"https://{p.domain.name}/", f"https://{p.domain.name}/print/", 1)
            html = render_html(p.domain.site, p.content, p.posted + timedelta(days=rng.randint(1, 90)),
                               [], variant=1)
        date = crawl_date(settings.crawls[crawl]) + timedelta(seconds=rng.randint(0, 6 * 86400))
        record_id = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        shards[shard].append(WebRecord(url, html, date, record_id))
        labels.append({
            "url": url, "is_math": p.section.is_math, "domain": p.domain.name, "dup_cluster": p.cluster,
            "contaminated": p.contaminated, "crawl": settings.crawls[crawl], "shard": shard,
            "record_id": record_id, "page_kind": p.content.kind, "path_kind": url.split("/")[3],
            "in_seed": False, "dup_kind": dup_kind, "templates": p.templates,
        })
    seed_rows = choose_seed(rng, pages, settings.seed_pages)
    seed_urls = {r["url"] for r in seed_rows}
    for label in labels:
        label["in_seed"] = label["url"] in seed_urls and label["dup_kind"] != "near_dup"
    stats = web_stats(domains, pages, labels, seed_rows)
    stats["ngram_redraws"] = drawer.ngram_rejects
    return shards, labels, seed_rows, stats


def choose_seed(rng: random.Random, pages: list[Page], n: int) -> list[dict]:
    """`{url, text}` of up to n clean math pages from the seed domains (the OpenWebMath stand-in)."""
    pool = [p for p in pages if p.domain.in_seed and p.section.is_math and not p.contaminated]
    chosen = sorted(rng.sample(pool, min(n, len(pool))), key=lambda p: p.url)
    return [{"url": p.url, "text": "\n\n".join([p.content.title] + [t for t in p.content.text if t])} for p in chosen]


def web_stats(domains: list[Domain], pages: list[Page], labels: list[dict], seed_rows: list[dict]) -> dict:
    return {
        "domains": dict(Counter(d.kind for d in domains)),
        "seed_domains": sorted(d.name for d in domains if d.in_seed),
        "original_pages": len(pages),
        "records": len(labels),
        "math_records": sum(lab["is_math"] for lab in labels),
        "math_fraction": round(sum(lab["is_math"] for lab in labels) / max(1, len(labels)), 4),
        "dup_kinds": dict(Counter(lab["dup_kind"] for lab in labels)),
        "contaminated_records": sum(lab["contaminated"] for lab in labels),
        "page_kinds": dict(sorted(Counter(lab["page_kind"] for lab in labels).items())),
        "seed_pages": len(seed_rows),
    }


def read_test_items(gsm8k_path: Path, math_path: Path) -> list[tuple[str, str]]:
    """(question, solution) of every test problem, from the GSM8K- and MATH500-schema files.

    A record without its question or solution text raises (naming file and line): the web must know
    every test problem to keep its clean pages free of them.
    """
    items = []
    for path, keys in ((gsm8k_path, ("question", "answer")), (math_path, ("problem", "solution"))):
        for line, rec in enumerate(read_jsonl(path), 1):
            missing = [k for k in keys if not isinstance(rec.get(k), str) or not rec[k].strip()]
            if missing:
                raise ValueError(f"{path}:{line}: test record without {missing} (expected keys {list(keys)})")
            items.append((rec[keys[0]], rec[keys[1]]))
    if not items:
        raise ValueError(f"no test problems in {gsm8k_path} or {math_path}")
    return items


def write_web(out: Path, shards: list[list[WebRecord]], labels: list[dict], seed_rows: list[dict],
              crawls: tuple[str, ...], seed: int) -> list[int]:
    rng = random.Random(f"{seed}:world.web:warcinfo")
    sizes = []
    for i, records in enumerate(shards):
        path = out / f"shard-{i:04d}.warc.gz"
        info_id = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        with atomic_path(path) as tmp:
            write_warc(tmp, records, info_id, crawl_date(crawls[0]), {
                "software": "mathpipe world.web", "format": "WARC File Format 1.1",
                "isPartOf": ",".join(crawls), "description": "generated web of the embedded default (mathpipe)",
            })
        sizes.append(path.stat().st_size)
    write_jsonl(out / "labels.jsonl", labels)
    write_jsonl(out / "seed.jsonl", seed_rows)
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("Generate the embedded default's web (WARC shards, labels, seed).")
    parser.add_argument("--test-gsm8k", required=True, help="test_gsm8k.jsonl from world.problems")
    parser.add_argument("--test-math", required=True, help="test_math.jsonl from world.problems")
    parser.add_argument("--out-dir", required=True, help="output folder")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(args.config, args.overrides)
    out = Path(args.out_dir)
    settings = WebSettings.from_config(cfg["world"]["web"])
    problems = ProblemSettings.from_config(cfg["world"]["problems"])
    seed = world_seed(cfg)
    t0 = time.perf_counter()
    test_items = read_test_items(Path(args.test_gsm8k), Path(args.test_math))
    templates = [t for family in FAMILIES for t in problems.family_templates(family)]
    shards, labels, seed_rows, stats = build_web(settings, seed, test_items, problems.max_steps, problems.max_number,
                                                 templates, problems.clean_ngram, problems.clean_min_exact)
    t_build = time.perf_counter() - t0
    stats["shard_bytes"] = write_web(out, shards, labels, seed_rows, settings.crawls, seed)
    stats.update(build_s=round(t_build, 3), wall_s=round(time.perf_counter() - t0, 3))
    write_run_record(out, "world.web", cfg, stats=stats)
    log.info("wrote %d records (%d math, %d contaminated) in %d shards + %d seed pages to %s in %.1fs",
             stats["records"], stats["math_records"], stats["contaminated_records"], len(shards),
             stats["seed_pages"], out, stats["wall_s"])


if __name__ == "__main__":
    main()
