"""Decontamination on real pages (issue #18): real StackMathQA math pages written into a WARC, read,
extracted and decontaminated against the real GSM8K and MATH test sets (problems and solutions), with
the settings of `corpus.decontamination` (config schema defaults). Planted copies of test problems,
verbatim and reformatted, are all removed; real pages holding no test problem are kept (<= 1% removed)."""

from __future__ import annotations

import html
import io
import json
import random
import re

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpus.decontaminate import DecontaminationFilter, NgramMatcher
from corpus.extract import extract_docs
from corpus.filters import StepStats, apply_filter
from corpus.warc import read_pages
from tests.conftest import shared_data

pytestmark = pytest.mark.shared

SETTINGS = {"ngram": 10, "min_exact": 3, "tokens": "latex", "generic": {}}  # the schema's defaults


def bench_texts() -> tuple[list[tuple[str, str]], list[str]]:
    texts, problems = [], []
    for line in shared_data("bench", "math_test.jsonl").read_text().splitlines():
        r = json.loads(line)
        texts += [("math", r["problem"]), ("math", r["solution"])]
        problems.append(r["problem"])
    for line in shared_data("bench", "gsm8k_test.jsonl").read_text().splitlines():
        r = json.loads(line)
        texts += [("gsm8k", r["question"]), ("gsm8k", r["answer"])]
        problems.append(r["question"])
    return texts, problems


def reformat(problem: str) -> str:
    """A light edit that keeps every word: case, spacing, `\\dfrac`, `x^{2}`, `\\( \\)` for `$`."""
    t = problem.replace("\\frac", "\\dfrac").replace("^2", "^{2}")
    t = re.sub(r"\$([^$]+)\$", r"\\(\1\\)", t)
    return "  ".join(t.upper().split(" "))


def page_html(title: str, body: str) -> bytes:
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p.strip())
    return (f"<html><head><title>{html.escape(title)}</title></head><body><nav>Home | Questions | Tags</nav>"
            f"<main><h1>{html.escape(title)}</h1>{paras}</main><footer>cc by-sa</footer></body></html>").encode()


def write_warc(path, pages: list[tuple[str, bytes]]) -> None:
    raw = io.BytesIO()
    writer = WARCWriter(raw, gzip=True)
    for url, body in pages:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    path.write_bytes(raw.getvalue())


def decontaminated(path, matcher) -> tuple[set[str], StepStats]:
    """URLs the pipeline's read -> extract -> decontaminate chain removes."""
    stats = StepStats("decontaminate")
    removed: set[str] = set()
    docs = extract_docs(read_pages(path, 0, stats), stats)
    for _ in apply_filter(docs, DecontaminationFilter(matcher), stats, on_reject=lambda d, r: removed.add(d.url)):
        pass
    return removed, stats


@pytest.fixture(scope="module")
def matcher():
    texts, _ = bench_texts()
    return NgramMatcher.from_config(texts, SETTINGS)


def test_real_math_pages_are_kept_and_planted_test_problems_removed(tmp_path, matcher):
    posts = [json.loads(x) for x in shared_data("corpus_samples", "text",
                                                "math_stackmathqa100k_files32-127.jsonl").read_text().splitlines()]
    _, problems = bench_texts()
    rng = random.Random(18)
    planted = rng.sample(problems, 150)
    pages, verbatim, edited = [], set(), set()
    for i, post in enumerate(posts):
        pages.append((post["meta"]["url"], page_html(f"Question {i}", post["Q"] + "\n\n" + post["A"])))
    for j, problem in enumerate(planted):
        host = posts[j]["A"]
        url_v, url_e = f"https://forum.example/v{j}", f"https://forum.example/e{j}"
        pages.append((url_v, page_html("Homework", f"Can someone help?\n\n{problem}\n\n{host}")))
        pages.append((url_e, page_html("Homework", f"{host}\n\nMy teacher gave us: {reformat(problem)} Thanks!")))
        verbatim.add(url_v)
        edited.add(url_e)
    write_warc(tmp_path / "real.warc.gz", pages)
    removed, stats = decontaminated(tmp_path / "real.warc.gz", matcher)
    real = {url for url, _ in pages} - verbatim - edited
    false_positives = removed & real
    print(f"real math pages removed: {len(false_positives)}/{len(real)}; planted verbatim removed "
          f"{len(removed & verbatim)}/{len(verbatim)}, reformatted {len(removed & edited)}/{len(edited)}; "
          f"matcher {matcher.summary()}")
    assert verbatim <= removed and edited <= removed
    assert len(false_positives) <= 0.01 * len(real), sorted(false_positives)[:10]


def test_the_words_rule_is_what_flagged_real_pages(matcher):
    """The before: the old words tokens with every n-gram counting flag > 5% of the real pages."""
    texts, _ = bench_texts()
    words = NgramMatcher.from_texts(texts, n=10, min_exact=3, tokens="words")
    posts = [json.loads(x) for x in shared_data("corpus_samples", "text",
                                                "math_stackmathqa100k_files32-127.jsonl").read_text().splitlines()]
    before = sum(words.is_contaminated(p["Q"] + "\n\n" + p["A"]) for p in posts)
    after = sum(matcher.is_contaminated(p["Q"] + "\n\n" + p["A"]) for p in posts)
    print(f"StackMathQA pages flagged: words rule {before}/{len(posts)}, latex+generic {after}/{len(posts)}")
    assert before > 0.05 * len(posts) and after <= 0.01 * len(posts)
