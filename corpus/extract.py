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

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree
from tqdm import tqdm

from corpus.cli import parser, setup
from corpus.dedup import MinHashDeduper, MinHashSettings, url_domain
from corpus.document import Document
from corpus.extract_guard import ExtractLimits, GuardedExtractor
from corpus.filters import MinTokensFilter, StepStats, apply_filter, count_out
from corpus.mathml import mathml_to_latex, tex_annotation
from corpus.shards import write_docs
from corpus.warc import MAX_RECORD_BYTES, read_pages
from pipeline.io import atomic_path

log = logging.getLogger(__name__)

# MathJax 2/3 rendering output that duplicates TeX kept elsewhere on the page.
RENDERED_MATH = (".MathJax_Preview, .MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_SVG_Display, "
                 ".MathJax_CHTML, .MJX_Assistive_MathML, .katex-html")


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
    rewrite_math(tree)
    text = extract_plain_text(
        tree, preserve_formatting=True, main_content=main_content, alt_texts=False, links=False,
        list_bullets=True, noscript=False, comments=True,
    )
    return text.strip()


def extract_docs(docs: Iterable[Document], stats: StepStats, main_content: bool = True,
                 limits: ExtractLimits | None = None) -> Iterator[Document]:
    """HTML pages -> text pages (WET text passes through). Pages `limits` finds suspicious (deep or huge
    DOM) are extracted in a child process under its time and memory limits (corpus/extract_guard.py).
    Dropped with a reason: `extract_error` (the parser rejects the page), `extract_timeout`,
    `extract_memory`, `extract_crash` (guarded path); `extra.extract_guarded` counts the guarded pages."""
    limits = limits or ExtractLimits()
    with GuardedExtractor(main_content, limits) as guard:
        for doc in docs:
            if doc.metadata.get("content_type") == "text/html":
                if limits.suspicious(doc.text):
                    stats.extra["extract_guarded"] = stats.extra.get("extract_guarded", 0) + 1
                    text, reason, message = guard.extract(doc.text)
                else:
                    try:
                        text, reason, message = html_to_text(doc.text, main_content), None, ""
                    except (ValueError, TypeError) as e:  # resiliparse's HTMLParserException is a ValueError
                        text, reason, message = None, "extract_error", str(e)
                if reason is not None:
                    stats.drop(reason)
                    stats.error(reason, url=doc.url, id=doc.id, offset=doc.metadata.get("offset"), message=message)
                    log.warning("%s (%s): %s: %s", doc.id, doc.url, reason, message)
                    continue
                doc.text = text
            stats.tokens_in += doc.n_tokens  # the words extracted (an HTML page has none before)
            yield doc


def extract_shard(warc: str | Path, shard: int, stats: StepStats, main_content: bool, min_tokens: int,
                  max_record_bytes: int = MAX_RECORD_BYTES, limits: ExtractLimits | None = None) -> list[Document]:
    """The extract step on one WARC/WET file: pages -> text -> length filter, domains attached."""
    docs = extract_docs(read_pages(warc, shard, stats, max_record_bytes=max_record_bytes), stats, main_content, limits)
    docs = apply_filter(docs, MinTokensFilter(min_tokens), stats)
    out = []
    for doc in count_out(tqdm(docs, desc=f"extract shard {shard}", mininterval=10, disable=None), stats):
        doc.metadata["domain"] = url_domain(doc.url)
        out.append(doc)
    return out


def main(argv: list[str] | None = None) -> None:
    p = parser("Extract step: one WARC/WET shard -> text pages (LaTeX kept) + MinHash signatures + stats.")
    p.add_argument("--input", required=True, help="WARC or WET file (gzip per record, or plain)")
    p.add_argument("--shard", type=int, required=True, help="shard index (document ids are s{shard}-{record})")
    p.add_argument("--output", required=True, help="document shard (Parquet)")
    p.add_argument("--signatures", required=True, help="MinHash signatures (.npy, rows aligned with --output)")
    p.add_argument("--stats", required=True)
    args = p.parse_args(argv)
    cfg = setup(args)
    ccfg = cfg["corpus"]
    stats = StepStats("extract", shard=args.shard)
    ecfg = ccfg["extract"]
    docs = extract_shard(args.input, args.shard, stats, ecfg["main_content"], ecfg["min_tokens"],
                         ecfg["max_record_bytes"], ExtractLimits.from_config(ecfg))
    deduper = MinHashDeduper(MinHashSettings.from_config(ccfg["dedup"], seed=cfg["seed"]))
    signatures = deduper.signatures(d.text for d in docs)
    write_docs(args.output, docs)
    with atomic_path(args.signatures) as tmp, open(tmp, "wb") as f:
        np.save(f, signatures)
    stats.extra = {"input": str(args.input)}
    stats.save(args.stats)
    log.info("shard %d: %d page records -> %d documents (dropped %s, %d errors)", args.shard, stats.docs_in,
             stats.docs_out, dict(stats.dropped), len(stats.errors))


if __name__ == "__main__":
    main()
