"""HTML -> text with the math kept as LaTeX (corpus/html_text.py, corpus/mathml.py), the extraction limits
(corpus/extract_guard.py: deep pages dropped by time, memory bound), and the test that
chose the extractor: on math pages in every markup the web uses (MathJax delimiters, MathJax 2 scripts,
MathJax 3 output, KaTeX, MathML, Wikipedia, WordPress formula images), which extractor keeps the
formulas and drops the boilerplate. `compare_extractors` is also reported by `make bench`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from resiliparse.parse.html import HTMLTree

from corpus.html_text import EXTRACT_OPTIONS, html_to_text, may_have_math, rewrite_math
from corpus.mathml import mathml_to_latex

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples"

NAV = ('<header><nav><a href="/">Home</a> | <a href="/topics">Topics</a> | <a href="/about">About us</a> | '
       '<a href="/login">Log in</a></nav></header>')
FOOTER = ('<footer><p>Copyright 2024 Example Media. All rights reserved.</p>'
          '<p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a></p></footer>')
BOILERPLATE = ("Privacy policy", "Log in")
PROSE = ("<p>In this post we work through the problem step by step, explaining each move so that the method "
         "can be reused on similar exercises later in the course.</p>")


def page(title: str, body: str, head: str = "") -> str:
    return (f"<!DOCTYPE html><html><head><title>{title}</title>{head}</head><body>{NAV}<main><article>"
            f"<h1>{title}</h1>{PROSE}{body}</article></main>{FOOTER}</body></html>")


MJ_SCRIPT = '<script src="https://cdn.jsdelivr.net/npm/mathjax@2/MathJax.js?config=TeX-AMS_HTML"></script>'
KATEX_Y = ('<span class="katex"><span class="katex-mathml"><math xmlns="http://www.w3.org/1998/Math/MathML"><semantics>'
           '<mrow><mi>y</mi><mo>=</mo><mi>m</mi><mi>x</mi><mo>+</mo><mi>b</mi></mrow>'
           '<annotation encoding="application/x-tex">y = mx + b</annotation></semantics></math></span>'
           '<span class="katex-html" aria-hidden="true"><span class="base"><span class="mord mathnormal">y</span>'
           '<span class="mrel">=</span><span class="mord mathnormal">m</span><span class="mord mathnormal">x</span>'
           '<span class="mbin">+</span><span class="mord mathnormal">b</span></span></span></span>')
KATEX_INT = ('<span class="katex-display"><span class="katex"><span class="katex-mathml"><math><semantics><mrow>'
             '<msubsup><mo>∫</mo><mn>0</mn><mn>1</mn></msubsup><msup><mi>x</mi><mn>2</mn></msup><mi>d</mi><mi>x</mi>'
             '</mrow><annotation encoding="application/x-tex">\\int_0^1 x^2\\,dx</annotation></semantics></math>'
             '</span><span class="katex-html" aria-hidden="true"><span class="mop">∫</span><span>01</span>'
             '<span>x2dx</span></span></span></span>')
MATHML_FRAC = ('<math display="block"><mrow><mi>x</mi><mo>=</mo><mfrac><mrow><mo>−</mo><mi>b</mi><mo>±</mo><msqrt>'
               '<mrow><msup><mi>b</mi><mn>2</mn></msup><mo>−</mo><mn>4</mn><mi>a</mi><mi>c</mi></mrow></msqrt></mrow>'
               '<mrow><mn>2</mn><mi>a</mi></mrow></mfrac></mrow></math>')
MATHML_SUM = ('<math><mrow><munderover><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover>'
              '<msub><mi>a</mi><mi>i</mi></msub><mo>≤</mo><mi>n</mi><mo>⋅</mo><mi>max</mi><msub><mi>a</mi><mi>i</mi>'
              '</msub></mrow></math>')
MATHML_MISC = ('<math><mrow><mi>sin</mi><mi>θ</mi><mo>+</mo><mroot><mi>x</mi><mn>3</mn></mroot><mo>+</mo>'
               '<mfenced><mi>a</mi><mi>b</mi></mfenced><mo>+</mo><mover><mi>v</mi><mo>→</mo></mover><mo>+</mo>'
               '<mfrac linethickness="0"><mi>n</mi><mi>k</mi></mfrac></mrow></math>')
MATHML_MATRIX = ('<math><mrow><mo>(</mo><mtable><mtr><mtd><mn>1</mn></mtd><mtd><mn>2</mn></mtd></mtr><mtr><mtd>'
                 '<mn>3</mn></mtd><mtd><mn>4</mn></mtd></mtr></mtable><mo>)</mo></mrow></math>')
WIKI = ('<span class="mwe-math-element"><span class="mwe-math-mathml-inline mwe-math-mathml-a11y" style="display: none;">'
        '<math alttext="{\\displaystyle a^{2}+b^{2}=c^{2}}"><semantics><mrow><msup><mi>a</mi><mn>2</mn></msup><mo>+</mo>'
        '<msup><mi>b</mi><mn>2</mn></msup><mo>=</mo><msup><mi>c</mi><mn>2</mn></msup></mrow>'
        '<annotation encoding="application/x-tex">{\\displaystyle a^{2}+b^{2}=c^{2}}</annotation></semantics></math>'
        '</span><img src="https://wikimedia.org/api/rest_v1/media/math/render/svg/abc" '
        'class="mwe-math-fallback-image-inline" alt="{\\displaystyle a^{2}+b^{2}=c^{2}}"></span>')
MJX3 = ('<mjx-container class="MathJax CtxtMenu_Attached_0" jax="CHTML" display="true"><mjx-math class="MJX-TEX">'
        '<mjx-mi><mjx-c>e</mjx-c></mjx-mi></mjx-math><mjx-assistive-mml display="block"><math display="block">'
        '<msup><mi>e</mi><mrow><mi>i</mi><mi>π</mi></mrow></msup><mo>+</mo><mn>1</mn><mo>=</mo><mn>0</mn></math>'
        '</mjx-assistive-mml></mjx-container>')

# (name, html, formulas that must appear verbatim in the extracted text)
MATH_PAGES = [
    ("mathjax_delimiters", page("Solving quadratics", MJ_SCRIPT + (
        "<p>Factor \\(x^2 - 5x + 6 = 0\\) as $(x-2)(x-3)=0$, so the roots are $x=2$ and $x=3$.</p>"
        "<p>In general $$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$$ and also \\[\\Delta = b^2 - 4ac.\\]</p>")),
     ["\\(x^2 - 5x + 6 = 0\\)", "$(x-2)(x-3)=0$", "$$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$$",
      "\\[\\Delta = b^2 - 4ac.\\]"]),
    ("mathjax2_script", page("Euler's identity", MJ_SCRIPT + (
        '<p>The identity <span class="MathJax_Preview">e^(i pi)+1=0</span><span class="MathJax" id="MathJax-Element-1-Frame">'
        '<nobr><span class="math">eiπ+1=0</span></nobr></span><script type="math/tex" id="MathJax-Element-1">'
        'e^{i\\pi} + 1 = 0</script> links five constants, and '
        '<script type="math/tex; mode=display">\\sum_{n=0}^\\infty \\frac{x^n}{n!} = e^x</script> defines the exponential.</p>')),
     ["$e^{i\\pi} + 1 = 0$", "$$\\sum_{n=0}^\\infty \\frac{x^n}{n!} = e^x$$"]),
    ("katex", page("Lines and areas", f"<p>A line is {KATEX_Y} for a slope m.</p><p>The area {KATEX_INT} is one third.</p>"),
     ["$y = mx + b$", "$$\\int_0^1 x^2\\,dx$$"]),
    ("mathml", page("The quadratic formula", (
        f"<p>The roots are</p>{MATHML_FRAC}<p>and a bound {MATHML_SUM} holds.</p>"
        f"<p>More notation: {MATHML_MISC} and {MATHML_MATRIX}.</p>")),
     ["$$x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}$$", "$\\sum_{i=1}^n a_i\\le n\\cdot\\max a_i$",
      "\\sin\\theta", "\\sqrt[3]{x}", "(a, b)", "\\vec{v}", "\\binom{n}{k}",
      "\\begin{matrix} 1 & 2 \\\\ 3 & 4 \\end{matrix}"]),
    ("wikipedia", page("Pythagorean theorem", f"<p>For a right triangle {WIKI} where c is the hypotenuse.</p>"),
     ["${\\displaystyle a^{2}+b^{2}=c^{2}}$"]),
    ("wordpress_latex_img", page("Circle area", (
        '<p>The area is <img class="latex" src="https://s0.wp.com/latex.php?latex=%5Cpi+r%5E2" alt="\\pi r^2" '
        'title="\\pi r^2"> for radius r, and the circumference is <img class="latex" alt="2\\pi r" src="x.png">.</p>')),
     ["$\\pi r^2$", "$2\\pi r$"]),
    ("mathjax3_rendered", page("Euler again", f"<p>Rendered by MathJax 3:</p>{MJX3}<p>as expected.</p>"),
     ["$$e^{i\\pi}+1=0$$"]),
]


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def kept_formulas(text: str, formulas: list[str]) -> int:
    t = _norm(text)
    return sum(_norm(f) in t for f in formulas)


@pytest.mark.parametrize("name, html, formulas", MATH_PAGES, ids=[p[0] for p in MATH_PAGES])
def test_every_formula_is_kept_as_latex(name, html, formulas):
    text = html_to_text(html)
    missing = [f for f in formulas if _norm(f) not in _norm(text)]
    assert not missing, f"{name}: missing {missing} in:\n{text}"
    for junk in BOILERPLATE:  # navigation and footer removed
        assert junk not in text, f"{name}: boilerplate {junk!r} kept"
    assert "katex-html" not in text and "x2dx" not in text and "eiπ+1=0" not in text  # no rendered duplicates


def test_mathml_to_latex_pieces():
    def conv(mathml: str) -> str:
        return mathml_to_latex(HTMLTree.parse(f"<html><body>{mathml}</body></html>").body.query_selector("math"))

    assert conv("<math><msup><mi>x</mi><mrow><mn>2</mn><mi>n</mi></mrow></msup></math>") == "x^{2n}"
    assert conv("<math><msubsup><mi>x</mi><mi>i</mi><mn>2</mn></msubsup></math>") == "x_i^2"
    assert conv("<math><mi>sin</mi><mi>x</mi></math>") == "\\sin x"
    assert conv("<math><msup><mi>x</mi><mi>n</mi></msup><mi>y</mi></math>") == "x^n y"
    assert conv("<math><mi>α</mi><mo>×</mo><mi>β</mi><mo>∈</mo><mi>ℝ</mi></math>") == "\\alpha\\times\\beta\\in\\mathbb{R}"
    assert conv("<math><mtext>if </mtext><mi>x</mi><mo>&gt;</mo><mn>0</mn></math>") == "\\text{if }x>0"
    assert conv('<math alttext="\\frac12"><mfrac><mn>1</mn><mn>2</mn></mfrac></math>') == "\\frac12"  # alttext wins
    assert conv("<math><munder><mi>lim</mi><mrow><mi>x</mi><mo>→</mo><mn>0</mn></mrow></munder></math>") == "\\lim_{x\\to 0}"


def test_rewrite_counts_formulas():
    tree = HTMLTree.parse(MATH_PAGES[1][1])
    assert rewrite_math(tree) == 2


# `may_have_math` lets pages without math markup skip the DOM rewrite; it must open for every way a selector
# can match: upper-case tags, quirks-mode class names (matched case-insensitively), unquoted attributes,
# letters written as numeric character references.
GATED_MARKUP = [
    ("upper_case_math_tag", "<p>Let <MATH><MI>x</MI><MO>=</MO><MN>2</MN></MATH> here.</p>", 1),
    ("quirks_mode_katex", '<html><body><p>So <span class="KaTeX"><annotation encoding="application/x-tex">a+b'
                          "</annotation></span> holds.</p></body></html>", 1),
    ("unquoted_img_tex", '<p>Area <img class=tex alt="\\pi r^2" src=f.png> of a disc.</p>', 1),
    ("katex_class_by_reference", '<p>So <span class="&#107;atex"><annotation encoding="application/x-tex">c^2'
                                 "</annotation></span> holds.</p>", 1),
    ("katex_class_by_reference_without_semicolon", '<p>So <span class="&#107atex"><annotation '
                                                   'encoding="application/x-tex">c^2</annotation></span> holds.</p>', 1),
    ("math_script_type_by_hex_reference", '<p>Take <script type="&#x6D;ath/tex">y_1</script> now.</p>', 1),
]


@pytest.mark.parametrize("name, html, n", GATED_MARKUP, ids=[g[0] for g in GATED_MARKUP])
def test_math_gate_opens_for_every_spelling_of_math_markup(name, html, n):
    assert may_have_math(html), name
    assert rewrite_math(HTMLTree.parse(html)) == n, name  # the markup is math the rewrite acts on


@pytest.mark.parametrize("name, html, formulas", MATH_PAGES, ids=[p[0] for p in MATH_PAGES])
def test_math_gate_opens_for_every_math_page(name, html, formulas):
    assert may_have_math(html), name


@pytest.mark.parametrize("html", [
    page("Shell", "<pre>echo $HOME; export PATH=$PATH:/opt/bin</pre><p>It&#8217;s in the context menu.</p>"),
    '<html><head><style type="text/css">p{color:red}</style></head><body><p>vertices &amp; index, text/plain</p></body></html>',
])
def test_math_gate_closed_on_pages_without_math_markup(html):
    assert not may_have_math(html)
    assert rewrite_math(HTMLTree.parse(html)) == 0


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (shared real-data samples)")
def test_gated_extraction_equals_the_full_rewrite_on_real_pages():
    """Real crawled pages (many with `&#...;` references, some loading MathJax): the gate changes no text."""
    from resiliparse.extract.html2text import extract_plain_text

    from corpus.filters import StepStats
    from corpus.warc import read_pages

    def full_rewrite(html: str) -> str:
        tree = HTMLTree.parse(html)
        rewrite_math(tree)
        return extract_plain_text(tree, main_content=True, **EXTRACT_OPTIONS).strip()

    pages = [p.text for f in ("dolma_sample-0000", "dolma_sample-0001")
             for p in read_pages(SHARED / f"warc/{f}.warc.gz", 0, StepStats("t"))]
    assert sum(not may_have_math(h) for h in pages) >= 10 and sum(may_have_math(h) for h in pages) >= 5
    assert [html_to_text(h) for h in pages] == [full_rewrite(h) for h in pages]


def compare_extractors(pages=MATH_PAGES) -> dict:
    """Formulas kept, boilerplate removed and ms per page for each extractor, with and without the math rewrite.

    trafilatura is optional (not a project dependency): it is compared when installed.
    """
    from resiliparse.extract.html2text import extract_plain_text

    def resiliparse_raw(html):
        return extract_plain_text(html, preserve_formatting=True, main_content=True, alt_texts=False)

    def with_rewrite(extract):
        def run(html):
            tree = HTMLTree.parse(html)
            rewrite_math(tree)
            return extract(str(tree))
        return run

    extractors = {"resiliparse+rewrite (ours)": html_to_text, "resiliparse": resiliparse_raw}
    try:
        import trafilatura

        def traf(html):
            return trafilatura.extract(html, favor_recall=True, include_comments=True) or ""

        extractors["trafilatura"] = traf
        extractors["trafilatura+rewrite"] = with_rewrite(traf)
    except ImportError:
        pass
    n_formulas = sum(len(f) for _, _, f in pages)
    out = {}
    for name, extract in extractors.items():
        t0 = time.perf_counter()
        texts = [extract(html) for _, html, _ in pages for _ in range(5)][::5]
        ms = (time.perf_counter() - t0) * 1000 / (5 * len(pages))
        kept = sum(kept_formulas(t, f) for t, (_, _, f) in zip(texts, pages))
        clean = sum(all(j not in t for j in BOILERPLATE) for t in texts)
        out[name] = {"formulas_kept": kept, "formulas": n_formulas, "formula_recall": round(kept / n_formulas, 3),
                     "pages_without_boilerplate": clean, "pages": len(pages), "ms_per_page": round(ms, 3)}
    return out


def test_extractor_choice_keeps_the_most_math():
    result = compare_extractors()
    ours = result["resiliparse+rewrite (ours)"]
    assert ours["formula_recall"] == 1.0 and ours["pages_without_boilerplate"] == ours["pages"], result
    for name, r in result.items():
        assert r["formula_recall"] <= ours["formula_recall"], (name, result)
    if "trafilatura+rewrite" in result:  # at equal math recall resiliparse is the faster one
        assert ours["ms_per_page"] < result["trafilatura+rewrite"]["ms_per_page"], result


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (shared real-data samples)")
def test_real_math_qa_text_survives_html_round_trip():
    """StackMathQA posts (real Markdown + LaTeX) rendered into a forum page: every $...$ formula comes back."""
    import html as html_lib

    lines = (SHARED / "text/math_stackmathqa100k_files32-127.jsonl").read_text().splitlines()[:40]
    n_formulas = n_kept = 0
    for line in lines:
        rec = json.loads(line)
        paras = [p for p in (rec["Q"] + "\n" + rec["A"]).split("\n") if p.strip()]
        body = "".join(f"<p>{html_lib.escape(p)}</p>" for p in paras)
        text = html_to_text(page("Question", body))
        formulas = [f for p in paras for f in re.findall(r"\$[^$\n]{1,200}\$", p)]
        n_formulas += len(formulas)
        n_kept += kept_formulas(text, formulas)
    assert n_formulas > 200 and n_kept / n_formulas >= 0.99, (n_kept, n_formulas)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (shared real-data samples)")
def test_real_pages_that_load_mathjax_extract_cleanly():
    """Real crawled homepages (9 load MathJax, none has math): text comes out, no script or style leaks."""
    from corpus.filters import StepStats
    from corpus.warc import read_pages

    pages = list(read_pages(SHARED / "warc/dolma_sample-0000.warc.gz", 0, StepStats("t")))
    texts = [html_to_text(p.text) for p in pages]
    assert sum(bool(t) for t in texts) >= 20
    assert not any("MathJax.Hub.Config" in t or "function(" in t or "{display:" in t for t in texts)


# Extraction limits (issue #18 item 4): corpus/extract_guard.py. A page nested 20,000 <div>s deep takes
# Resiliparse's main-content extraction tens of seconds (quadratic in depth, in C: no signal stops it).


def deep_page(depth: int) -> str:
    return "<html><body>" + "<div>deep " * depth + "bottom text" + "</div>" * depth + "</body></html>"


@pytest.mark.parametrize("html, depth, tags", [
    ("<html><body><div><div><p>a<p>b</div><div><br><img src=x></div></div></body></html>", 2, 3),
    ("<div><ul><li>a<li>b<ul><li>c</ul></ul></div>", 3, 3),  # <li>'s end tag is implied: not nesting
    ("<div>unclosed <div>unclosed <div>x", 3, 3),  # the parser nests unclosed divs: so does the estimate
    ("<svg><path d='M0'/><path d='M1'/></svg><DIV CLASS=a>x</DIV>", 1, 2),  # self-closed, upper case
    ("<script>if (a < b) {}</script><p>x</p>", 1, 1),  # '<' + space is no tag
    ("<!-- <div> --><div>x</div>", 2, 2),  # tags in comments count (an overestimate, never an under-)
    ("plain text, no markup", 0, 0),
])
def test_dom_depth_estimate(html, depth, tags):
    from corpus.extract_guard import dom_depth

    assert dom_depth(html) == (depth, tags)


def test_dom_depth_is_linear():
    """The pre-check must stay cheap on exactly the pages that are expensive to extract."""
    from corpus.extract_guard import dom_depth

    def cpu(depth: int) -> float:
        html = deep_page(depth)
        t0 = time.process_time()
        for _ in range(3):
            assert dom_depth(html)[0] == depth
        return time.process_time() - t0

    small, large = cpu(20_000), cpu(160_000)
    assert large < 20 * small, (small, large)  # 8x the input: linear is ~8x, quadratic would be ~64x


def _warc_with_deep_page(path: Path, depth: int) -> list[str]:
    from datetime import UTC, datetime

    from world.warc import WebRecord, write_warc

    start = datetime(2024, 1, 1, tzinfo=UTC)
    good = page("Primes", "<p>Every integer above 1 is a product of primes, and $p \\mid ab$ implies $p \\mid a$ "
                "or $p \\mid b$ for a prime $p$.</p>")
    htmls = [good, deep_page(depth), good.replace("Primes", "Gaps")]
    urls = ["https://a.org/primes", "https://b.org/deep", "https://a.org/gaps"]
    write_warc(path, [WebRecord(u, h, start, f"urn:uuid:00000000-0000-4000-8000-{i:012x}")
                      for i, (u, h) in enumerate(zip(urls, htmls))], "urn:uuid:ffffffff-0000-4000-8000-000000000000",
               start, {"software": "test"})
    return urls


def test_a_20000_deep_page_is_dropped_and_its_neighbours_kept(tmp_path):
    from corpus.extract import extract_shard
    from corpus.extract_guard import ExtractLimits
    from corpus.filters import StepStats

    urls = _warc_with_deep_page(tmp_path / "deep.warc.gz", 20_000)
    stats = StepStats("extract", shard=0)
    t0 = time.perf_counter()
    docs = extract_shard(tmp_path / "deep.warc.gz", 0, stats, main_content=True, min_tokens=5,
                         limits=ExtractLimits(time_limit_s=1.0))
    wall = time.perf_counter() - t0
    assert [d.url for d in docs] == [urls[0], urls[2]]
    assert "$p \\mid ab$" in docs[0].text
    assert dict(stats.dropped) == {"extract_timeout": 1}
    assert stats.docs_in == stats.docs_out + 1 == 3
    (err,) = stats.errors
    assert err["reason"] == "extract_timeout" and err["url"] == urls[1] and err["id"] == "s0000-0000001"
    assert stats.extra["extract_guarded"] == 1  # only the deep page paid for the child process
    assert wall < 15, wall  # 1 s limit + the child's start (seconds on a loaded machine), not the minutes


def test_guarded_extraction_gives_the_same_text_and_restarts_after_a_kill():
    from corpus.extract_guard import ExtractLimits, GuardedExtractor

    html = page("Primes", "<p>The sum $\\sum_{k=1}^n k = \\frac{n(n+1)}{2}$ holds for all $n$.</p>")
    with GuardedExtractor(True, ExtractLimits(time_limit_s=0.5)) as guard:
        assert guard.extract(html) == (html_to_text(html), None, "")
        text, reason, message = guard.extract(deep_page(20_000))
        assert (text, reason) == (None, "extract_timeout") and "0.5 s" in message
        assert guard.extract(html) == (html_to_text(html), None, "")  # a fresh child
        assert guard.starts == 2


def test_guarded_extraction_memory_limit():
    """A page whose extraction needs more than memory_limit_mb is dropped, not the machine's memory; the
    same page extracts under a larger limit (so the limit, not the page, dropped it)."""
    from corpus.extract_guard import ExtractLimits, GuardedExtractor

    big = "<html><body><p>" + "word " * 200 + "</p>" + "<div><span>x</span></div>" * 200_000 + "</body></html>"
    with GuardedExtractor(True, ExtractLimits(time_limit_s=120, memory_limit_mb=64)) as guard:
        text, reason, message = guard.extract(big)
        # Lexbor reports the failed allocation (extract_memory); a library that aborts instead is a crash.
        assert text is None and reason in ("extract_memory", "extract_crash"), (reason, message)
        small = page("Primes", "<p>Short page.</p>")
        assert guard.extract(small)[0] == html_to_text(small)
    with GuardedExtractor(True, ExtractLimits(time_limit_s=120, memory_limit_mb=1024)) as guard:
        text, reason, _ = guard.extract(big)
        assert reason is None and text.startswith("word word")


def test_suspicious_routes_only_deep_or_huge_pages():
    from corpus.extract_guard import ExtractLimits

    limits = ExtractLimits(guard_depth=50, guard_tags=1000)
    assert not limits.suspicious(page("Primes", PROSE * 20))
    assert limits.suspicious(deep_page(51))
    assert not limits.suspicious(deep_page(50))
    assert limits.suspicious("<div>" + "<span>x</span>" * 1001 + "</div>")


def test_the_extract_cli_reads_its_limits_from_the_config(tmp_path):
    """corpus.extract.max_record_bytes / time_limit_s / guard_depth reach the reader and the guard: with a
    record limit between the page sizes the big page is too_large; the deep page times out."""
    import numpy as np

    from corpus.extract import main
    from corpus.shards import read_docs

    urls = _warc_with_deep_page(tmp_path / "in.warc.gz", 3_000)
    out = tmp_path / "out"
    config = Path(__file__).resolve().parents[1] / "config" / "tiny.yaml"
    main(["--config", str(config), "--input", str(tmp_path / "in.warc.gz"), "--shard", "3",
          "--output", str(out / "docs.parquet"), "--signatures", str(out / "sig.npy"), "--stats", str(out / "stats.json"),
          "--set", "corpus.extract.max_record_bytes=20000", "--set", "corpus.extract.time_limit_s=0.01",
          "--set", "corpus.extract.guard_depth=100", "--set", "corpus.extract.min_tokens=5"])
    stats = json.loads((out / "stats.json").read_text())
    # The 3,000-deep page is ~36 KB: over 20,000 bytes, skipped unread before any extraction.
    assert stats["dropped"] == {"too_large": 1} and stats["docs_out"] == 2
    assert [d.url for d in read_docs(out / "docs.parquet")] == [urls[0], urls[2]]
    assert np.load(out / "sig.npy").shape == (2, 128)

    main(["--config", str(config), "--input", str(tmp_path / "in.warc.gz"), "--shard", "3",
          "--output", str(out / "docs.parquet"), "--signatures", str(out / "sig.npy"), "--stats", str(out / "stats.json"),
          "--set", "corpus.extract.time_limit_s=0.01", "--set", "corpus.extract.guard_depth=100"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dropped"] == {"extract_timeout": 1} and stats["extra"]["extract_guarded"] == 1
