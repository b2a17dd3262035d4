"""The extract step (§2.1): one WARC/WET shard -> text pages with the math kept as LaTeX
(`corpus.html_text`), pages too short dropped, MinHash signatures for the dedup step.

A page that is deep or huge (`corpus.extract_guard`) is extracted in a child process under a time and
memory limit, so one pathological page costs at most `corpus.extract.time_limit_s` and the shard goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from corpus.cli import parser, setup
from corpus.dedup import MinHashDeduper, MinHashSettings, url_domain
from corpus.document import Document
from corpus.extract_guard import ExtractLimits, GuardedExtractor
from corpus.filters import MinTokensFilter, StepStats, apply_filter, count_out
from corpus.html_text import html_to_text
from corpus.shards import write_docs
from corpus.warc import MAX_RECORD_BYTES, read_pages
from pipeline.io import atomic_path

log = logging.getLogger(__name__)


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
    stats.extra["input"] = str(args.input)  # next to the counts the reader and the guard put there
    stats.save(args.stats)
    log.info("shard %d: %d page records -> %d documents (dropped %s, %d errors)", args.shard, stats.docs_in,
             stats.docs_out, dict(stats.dropped), len(stats.errors))


if __name__ == "__main__":
    main()
