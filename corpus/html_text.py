"""HTML -> plain text that keeps the math as LaTeX, with boilerplate removed (§2.1; the paper does
not name its extractor, we choose and document).

Extractor choice: Resiliparse, by the test in tests/test_corpus_extract.py (`compare_extractors`,
also in `make bench`): on 7 math pages in every markup below (20 formulas, with navigation, sidebar
and footer), Resiliparse and trafilatura alone each keep 4/20 formulas (only TeX already written
in the text); with the math rewrite below both keep 20/20 and both drop all boilerplate, and then
Resiliparse takes ~0.6 ms a page against ~3 ms for trafilatura. The rewrite is what keeps math; at
equal math recall the faster extractor wins (the issue asks 1000 pages/s per core for extract +
classify + MinHash).

Math markup rewritten into `$...$` / `$$...$$` text before extraction (DOM edits on the parsed tree):
- `<script type="math/tex">` (MathJax 2 source; `; mode=display` -> `$$`),
- KaTeX output (`.katex`: its `<annotation encoding="application/x-tex">`; the visual spans go),
- Wikipedia's `.mwe-math-element` (TeX annotation / alt text; the fallback image goes),
- MathJax 3 `<mjx-container>` (its assistive MathML, converted) and MathJax 2 rendered spans
  (`.MathJax`, `.MathJax_Preview`, ...: duplicates of the script source, removed),
- `<math>` MathML (TeX annotation if shipped, else `corpus.mathml` converts it),
- `<img class="latex">` / `<img class="tex">` formula images (their alt text, as WordPress writes it).
TeX already in the text (`$...$`, `\\(...\\)`, `\\[...\\]`) passes through the extractor unchanged.
"""

from __future__ import annotations

import re

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from corpus.mathml import mathml_to_latex, tex_annotation

# MathJax 2/3 rendering output that duplicates TeX kept elsewhere on the page.
RENDERED_MATH = (".MathJax_Preview, .MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_SVG_Display, "
                 ".MathJax_CHTML, .MJX_Assistive_MathML, .katex-html")


# `may_have_math`: a page none of whose selectors above can match skips `rewrite_math` (its 7 DOM walks cost
# ~0.35 ms on a 36 KB documentation page, the check ~0.17 ms; CPU time; 2,699 of the 3,944 real pages of
# benchmarks/bench_corpus_ingest.py skip it). Every selector needs one of these ASCII words in the page's source,
# in any case (tag names and, in quirks mode, class names match case-insensitively): `math` (math/tex scripts,
# mwe-math-element, MathJax*, MJX_Assistive_MathML, <math>, img.math), `katex`, `mjx` (<mjx-container>), `latex`,
# or the class `tex`: a `tex` that does not begin `text` (counted: a regex for `tex\b` cost 4x more).
# The one other way to write those letters is a numeric character reference (`&#109;ath`, in an attribute):
# a page with a reference to an ASCII letter always takes the rewrite. Named references spell no ASCII letter.
_MATH_WORDS = (b"math", b"katex", b"mjx", b"latex")
# A reference to A-Z or a-z (hex 41-5a / 61-7a, decimal 65-122: a few symbols too), leading zeros allowed,
# not followed by another digit of its base (the parser reads them all; `&#107atex` is `katex`).
_LETTER_REFERENCE = re.compile(rb"&#(?:x0*(?:4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a])(?![0-9a-f])"
                               rb"|0*(?:6[5-9]|[7-9][0-9]|1[01][0-9]|12[0-2])(?![0-9]))")


def may_have_math(html: str) -> bool:
    """False only if no math selector of `rewrite_math` can match in this page."""
    low = html.encode("utf-8", "surrogatepass").lower()  # ASCII lower-casing: what the selectors ignore
    return (any(word in low for word in _MATH_WORDS) or low.count(b"tex") > low.count(b"text")
            or (b"&#" in low and _LETTER_REFERENCE.search(low) is not None))


# Resiliparse's text options besides main_content: paragraphs kept, no alt texts, link targets or noscript.
EXTRACT_OPTIONS = {"preserve_formatting": True, "alt_texts": False, "links": False, "list_bullets": True,
                   "noscript": False, "comments": True}


def _wrap(tex: str, display: bool) -> str:
    tex = tex.strip()
    if not tex:
        return ""
    return f" $${tex}$$ " if display else f" ${tex}$ "


def _replace(tree: HTMLTree, node, text: str) -> None:
    node.replace_with(tree.create_text_node(text))


def rewrite_math(tree: HTMLTree) -> int:
    """Replace math markup in `tree` by TeX text nodes; returns how many formulas were rewritten."""
    root = tree.document
    if root is None:
        return 0
    n = 0
    for script in root.query_selector_all('script[type^="math/tex"]'):
        _replace(tree, script, _wrap(script.text or "", "mode=display" in (script.get_attribute("type") or "")))
        n += 1
    for wiki in root.query_selector_all(".mwe-math-element"):
        math = wiki.query_selector("math")
        img = wiki.query_selector("img")
        tex = (tex_annotation(wiki) or (math.get_attribute("alttext") if math else None)
               or (img.get_attribute("alt") if img else None) or "")
        display = bool(wiki.query_selector(".mwe-math-mathml-display")) or (math and math.get_attribute("display") == "block")
        _replace(tree, wiki, _wrap(tex, bool(display)))
        n += 1
    for katex in root.query_selector_all(".katex"):
        tex = tex_annotation(katex)
        if tex is None:
            math = katex.query_selector("math")
            tex = mathml_to_latex(math) if math else ""
        _replace(tree, katex, _wrap(tex, katex.closest(".katex-display") is not None))
        n += 1
    for mjx in root.query_selector_all("mjx-container"):
        math = mjx.query_selector("math")
        _replace(tree, mjx, _wrap(mathml_to_latex(math), mjx.get_attribute("display") == "true") if math else "")
        n += 1
    for rendered in root.query_selector_all(RENDERED_MATH):
        rendered.remove()
    for math in root.query_selector_all("math"):
        _replace(tree, math, _wrap(mathml_to_latex(math), math.get_attribute("display") == "block"))
        n += 1
    for img in root.query_selector_all("img.latex, img.tex, img.math"):
        alt = img.get_attribute("alt") or ""
        if alt.strip():
            _replace(tree, img, _wrap(alt, False))
            n += 1
    return n


def html_to_text(html: str, main_content: bool = True) -> str:
    """Plain text of a page with its math as LaTeX; paragraphs separated by blank lines."""
    tree = HTMLTree.parse(html)
    if may_have_math(html):
        rewrite_math(tree)
    return extract_plain_text(tree, main_content=main_content, **EXTRACT_OPTIONS).strip()
