"""Read pages from WARC and WET files with FastWARC; skip, count and name what is malformed.

Common Crawl ships WARC (HTTP responses with HTML) and WET (extracted plain text, `conversion`
records), both gzip-compressed per record (§2.1 mines Common Crawl). `read_pages` yields one
`Document` per page record, with `text` = the decoded HTML (WARC) or the plain text (WET):

- `response` records with HTTP 200 and an HTML content type, and `conversion` records, become pages;
  other responses are dropped with a reason (`http_status`, `not_html`), `revisit` records too
  (`revisit`: no payload). warcinfo / request / metadata / resource records are not pages.
- A record whose payload is shorter than its Content-Length (a truncated file) is dropped as
  `malformed_record` and named in the stats (file, offset, message).
- A parse error (a corrupt gzip member, garbage between records) does not end the shard: the reader
  resynchronises at the next gzip member (or the next `WARC/1.` line in an uncompressed file) and
  goes on, counting one `malformed_record` per corrupt region. A file with no readable record at all
  is a `malformed_file`. Either way the rest of the shard is kept.
Each page record, corrupt region and malformed file counts once in `docs_in`, so the stats always
satisfy docs_in = docs_out + dropped.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Iterator
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from corpus.document import Document, doc_id
from corpus.filters import StepStats

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/1."
HTML_TYPES = ("text/html", "application/xhtml+xml")
PAGE_TYPES = WarcRecordType.response | WarcRecordType.conversion | WarcRecordType.revisit


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == GZIP_MAGIC


def clean_uri(uri: str | None) -> str:
    """WARC-Target-URI as a plain URL: wget writes `<https://...>`, some writers leave spaces."""
    return (uri or "").strip().strip("<>").strip().replace(" ", "%20")


def read_pages(path: str | Path, shard: int, stats: StepStats) -> Iterator[Document]:
    """Yield the pages of one WARC/WET file; every page record is counted in `stats` (in, or dropped)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        gz = size > 0 and is_gzip(path)
    except OSError as e:
        stats.seen()
        stats.drop("malformed_file")
        stats.error("malformed_file", file=str(path), message=str(e))
        log.error("%s: cannot open: %s", path, e)
        return
    if size == 0:
        stats.seen()
        stats.drop("malformed_file")
        stats.error("malformed_file", file=str(path), message="empty file")
        log.error("%s: empty file", path)
        return

    index = 0
    records_read = 0
    bad_regions: list[dict] = []
    pos: int | None = 0
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        while pos is not None:
            fh.seek(pos)
            last_good = None
            try:
                for rec in ArchiveIterator(fh, auto_decode="all", strict_mode=False):
                    last_good = rec.stream_pos
                    records_read += 1
                    if rec.record_type & PAGE_TYPES:
                        page = _page(rec, path, shard, index, stats)
                        index += 1
                        if page is not None:
                            yield page
                pos = None  # clean end of file
            except (OSError, ValueError) as e:
                where = pos if last_good is None else last_good
                if last_good is not None or not bad_regions:
                    # A new corrupt region; a failure right after a resync continues the previous one.
                    bad_regions.append({"file": str(path), "offset": where, "message": str(e)})
                    log.warning("%s: malformed data after offset %d (%s); resynchronising", path, where, e)
                pos = _next_record_start(mm, where + 1, gz)
    if records_read == 0:
        stats.seen()
        stats.drop("malformed_file")
        stats.error("malformed_file", **(bad_regions[0] if bad_regions else
                                         {"file": str(path), "offset": 0, "message": "no WARC record found"}))
        log.error("%s: no readable WARC record; file skipped", path)
        return
    for region in bad_regions:
        stats.seen()
        stats.drop("malformed_record")
        stats.error("malformed_record", **region)


def _page(rec, path: Path, shard: int, index: int, stats: StepStats) -> Document | None:
    """One page record -> a Document with the raw page text, or None (counted as dropped). A payload that
    cannot be read raises before the record is counted: the caller counts its corrupt region instead."""
    payload = rec.reader.read()
    stats.seen()
    url = clean_uri(rec.headers.get("WARC-Target-URI"))
    offset = rec.stream_pos
    if rec.record_type == WarcRecordType.revisit:
        stats.drop("revisit")
        return None
    encoded = rec.is_http and (
        rec.http_headers.get("Content-Encoding") or rec.http_headers.get("Transfer-Encoding")
    )
    if not encoded and len(payload) < rec.content_length:
        stats.drop("malformed_record")
        stats.error("malformed_record", file=str(path), offset=offset, url=url,
                    message=f"truncated payload: {len(payload)} of {rec.content_length} bytes")
        return None
    if not url:
        stats.drop("malformed_record")
        stats.error("malformed_record", file=str(path), offset=offset, message="no WARC-Target-URI")
        return None
    meta = {"shard": shard, "offset": offset, "warc_date": rec.headers.get("WARC-Date", "")}
    if rec.record_type == WarcRecordType.conversion:
        meta["content_type"] = "text/plain"
        return Document(text=bytes_to_str(payload, "utf-8"), id=doc_id(shard, index), url=url, metadata=meta)
    status = rec.http_headers.status_code if rec.is_http else None
    if status != 200:
        stats.drop("http_status")
        return None
    ctype = (rec.http_content_type or "").lower()
    if ctype and ctype not in HTML_TYPES:
        stats.drop("not_html")
        return None
    if not ctype and b"<html" not in payload[:2048].lower():
        stats.drop("not_html")
        return None
    encoding = rec.http_charset or detect_encoding(payload, from_html_meta=True)
    meta["content_type"] = "text/html"
    return Document(text=bytes_to_str(payload, encoding), id=doc_id(shard, index), url=url, metadata=meta)


def _next_record_start(mm: mmap.mmap, start: int, gz: bool) -> int | None:
    """Offset of the next gzip member (or `WARC/1.` line) at or after `start`, or None at the end."""
    magic = GZIP_MAGIC if gz else WARC_MAGIC
    while True:
        i = mm.find(magic, start)
        if i < 0:
            return None
        if gz or i == 0 or mm[i - 1 : i] == b"\n":
            return i
        start = i + 1
