"""Read pages from WARC and WET files with FastWARC; skip, count and name what is malformed.

Common Crawl ships WARC (HTTP responses with HTML) and WET (extracted plain text, `conversion`
records), both gzip-compressed per record (§2.1 mines Common Crawl). `read_pages` yields one
`Document` per page record, with `text` = the decoded HTML (WARC) or the plain text (WET):

- `response` records with HTTP 200 and an HTML content type, and `conversion` records, become pages;
  other responses are dropped with a reason (`http_status`, `not_html`), `revisit` records too
  (`revisit`: no payload). warcinfo / request / metadata / resource records are not pages.
- Every malformed page record is dropped with a reason and named in the stats (file, offset, url,
  message), and the records around it are kept (issue #18):
  `truncated_record` (payload shorter than its Content-Length, or a header cut off at the end of the
  file), `content_length_mismatch` (the declared length over- or under-runs the block: the bytes at
  its end are not the record separator; never emitted, so the next record's header never becomes
  page text and no record comes out twice), `invalid_header` (Content-Length missing or not a number),
  `too_large` (Content-Length over `max_record_bytes`: skipped unread, so memory stays bounded),
  `not_text` (a PDF, image or other binary body served as HTML: magic bytes or under
  `min_printable` printable characters), `undecodable` (over 1% of the characters replaced when
  decoding). Pages decoded with a few replaced bytes are kept and counted in `extra.decoded_with_replacement`.
- A parse error (a corrupt gzip member, garbage between records) does not end the shard: the reader
  resynchronises at the next gzip member (or the next `WARC/1.` line in an uncompressed file) and
  goes on, counting one `malformed_region` per corrupt region. A file with no readable record at all
  is a `malformed_file`. Either way the rest of the shard is kept.
A page is yielded only once the record after it parsed (or the file ended cleanly), so a parse error
right after a record can still be blamed on that record's Content-Length. Each page record, corrupt
region and malformed file counts once in `docs_in`, so the stats always satisfy docs_in = docs_out + dropped.
"""

from __future__ import annotations

import logging
import mmap
import re
import zlib
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
MAX_RECORD_BYTES = 10 * 1024 * 1024  # Common Crawl truncates payloads at 1 MiB; 10 MiB leaves room
MIN_PRINTABLE = 0.9
# Bodies that are not text whatever their Content-Type says (PDF, images, archives, fonts, executables).
BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF",
                b"\x00\x00\x01\x00", b"wOFF", b"wOF2", b"\x7fELF", b"MZ", b"BM", b"OggS", b"ID3", b"7z\xbc\xaf")
EMBEDDED_HEADER = b"\r\n\r\nWARC/1."
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # C-speed count of binary bytes


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == GZIP_MAGIC


def clean_uri(uri: str | None) -> str:
    """WARC-Target-URI as a plain URL: wget writes `<https://...>`, some writers leave spaces."""
    return (uri or "").strip().strip("<>").strip().replace(" ", "%20")


def read_pages(path: str | Path, shard: int, stats: StepStats, max_record_bytes: int = MAX_RECORD_BYTES,
               min_printable: float = MIN_PRINTABLE) -> Iterator[Document]:
    """Yield the pages of one WARC/WET file; every page record is counted in `stats` (in, or dropped)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        gz = size > 0 and is_gzip(path)
    except OSError as e:
        _bad_file(stats, path, str(e))
        return
    if size == 0:
        _bad_file(stats, path, "empty file")
        return

    index = 0
    records_read = 0
    bad_regions: list[dict] = []
    pos: int | None = 0
    reader = _PageReader(path, shard, stats, max_record_bytes, min_printable)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        while pos is not None:
            fh.seek(pos)
            last = None  # (offset, page held back or None, counted as a page record)
            try:
                for rec in ArchiveIterator(fh, auto_decode="all", strict_mode=False):
                    if last is not None and last[1] is not None:
                        yield last[1]  # the record after it parsed: its length was right
                    records_read += 1
                    page = None
                    if rec.record_type & PAGE_TYPES:
                        page = reader.page(rec, index)
                        index += 1
                    last = (rec.stream_pos, page, bool(rec.record_type & PAGE_TYPES))
                if last is not None and last[1] is not None:
                    yield last[1]
                pos = None  # clean end of file
            except (OSError, ValueError) as e:
                where = pos if last is None else last[0]
                if last is not None and not _block_consistent(mm, last[0], gz):
                    # The parse error is the previous record's own length running over or short.
                    if last[1] is not None:
                        reader.drop(last[1], "content_length_mismatch",
                                    "Content-Length does not end at a record separator (over- or under-run)")
                    elif not last[2]:
                        bad_regions.append({"file": str(path), "offset": where, "message": f"{e} (bad Content-Length)"})
                else:
                    if last is not None and last[1] is not None:
                        yield last[1]
                    if last is not None or not bad_regions:
                        # A new corrupt region; a failure right after a resync continues the previous one.
                        bad_regions.append({"file": str(path), "offset": where, "message": str(e)})
                        log.warning("%s: malformed data after offset %d (%s); resynchronising", path, where, e)
                pos = _next_record_start(mm, where + 1, gz)
    if records_read == 0:
        _bad_file(stats, path, **(bad_regions[0] if bad_regions else {"offset": 0, "message": "no WARC record found"}))
        return
    for region in bad_regions:
        stats.seen()
        stats.drop("malformed_region")
        stats.error("malformed_region", **region)
    if reader.replaced:
        stats.extra["decoded_with_replacement"] = stats.extra.get("decoded_with_replacement", 0) + reader.replaced


def _bad_file(stats: StepStats, path: Path, message: str, offset: int | None = None, **_) -> None:
    stats.seen()
    stats.drop("malformed_file")
    stats.error("malformed_file", file=str(path), offset=offset, message=message)
    log.error("%s: %s; file skipped", path, message)


class _PageReader:
    """Turns one page record into a Document, or drops it (counted in `stats`) with a reason."""

    def __init__(self, path: Path, shard: int, stats: StepStats, max_record_bytes: int, min_printable: float):
        self.path, self.shard, self.stats = path, shard, stats
        self.max_record_bytes, self.min_printable = max_record_bytes, min_printable
        self.replaced = 0

    def _reject(self, reason: str, offset: int, url: str, message: str | None = None) -> None:
        self.stats.drop(reason)
        if message is not None:
            self.stats.error(reason, file=str(self.path), offset=offset, url=url, message=message)

    def drop(self, doc: Document, reason: str, message: str) -> None:
        """A page already counted as seen turns out malformed: count it dropped instead of yielding it."""
        self._reject(reason, doc.metadata["offset"], doc.url, message)

    def page(self, rec, index: int) -> Document | None:
        """One page record -> a Document with the raw page text, or None (counted as dropped). A payload that
        cannot be read raises before the record is counted: the caller counts its corrupt region instead."""
        url = clean_uri(rec.headers.get("WARC-Target-URI"))
        offset = rec.stream_pos
        declared = rec.headers.get("Content-Length")
        try:
            length = int(declared)
        except (TypeError, ValueError):
            length = None
        if length is not None and length > self.max_record_bytes:
            self.stats.seen()  # skipped unread: FastWARC consumes the rest of the record in small reads
            self._reject("too_large", offset, url, f"Content-Length {length} > max_record_bytes {self.max_record_bytes}")
            return None
        payload = rec.reader.read()
        self.stats.seen()
        if length is None:
            at_end = not payload
            self._reject("truncated_record" if at_end and declared is None else "invalid_header", offset, url,
                         f"Content-Length {declared!r} is not a number" if declared is not None
                         else "record header has no Content-Length (cut off at the end of the file?)")
            return None
        if rec.record_type == WarcRecordType.revisit:
            self._reject("revisit", offset, url)
            return None
        encoded = rec.is_http and (rec.http_headers.get("Content-Encoding") or rec.http_headers.get("Transfer-Encoding"))
        if not encoded and len(payload) < rec.content_length:
            self._reject("truncated_record", offset, url,
                         f"truncated payload: {len(payload)} of {rec.content_length} bytes")
            return None
        if EMBEDDED_HEADER in payload:
            self._reject("content_length_mismatch", offset, url,
                         "payload holds the next record's WARC header (Content-Length overruns the record)")
            return None
        if not url:
            self._reject("invalid_header", offset, url, "no WARC-Target-URI")
            return None
        meta = {"shard": self.shard, "offset": offset, "warc_date": rec.headers.get("WARC-Date", "")}
        if rec.record_type == WarcRecordType.conversion:
            meta["content_type"] = "text/plain"
            return self._text_page(payload, "utf-8", index, url, meta)
        status = rec.http_headers.status_code if rec.is_http else None
        if status != 200:
            self._reject("http_status", offset, url)
            return None
        ctype = (rec.http_content_type or "").lower()
        if (ctype and ctype not in HTML_TYPES) or (not ctype and b"<html" not in payload[:2048].lower()):
            self._reject("not_html", offset, url)
            return None
        meta["content_type"] = "text/html"
        encoding = rec.http_charset or detect_encoding(payload, from_html_meta=True)
        return self._text_page(payload, encoding, index, url, meta)

    def _text_page(self, payload: bytes, encoding: str, index: int, url: str, meta: dict) -> Document | None:
        offset = meta["offset"]
        if payload.lstrip()[:8].startswith(BINARY_MAGIC):
            self._reject("not_text", offset, url, f"binary body (starts {payload.lstrip()[:8]!r})")
            return None
        try:  # Python's codecs replace invalid bytes (counted below); resiliparse's maps unknown names
            text = payload.decode(encoding, errors="replace")
        except LookupError:
            text = bytes_to_str(payload, encoding)
        head = text[:65536]
        if head:
            printable = 1 - len(_CONTROL.findall(head)) / len(head)
            if printable < self.min_printable:
                self._reject("not_text", offset, url, f"{printable:.0%} printable characters (< {self.min_printable:.0%})")
                return None
            replaced = head.count("\ufffd")
            if replaced > 0.01 * len(head):
                self._reject("undecodable", offset, url, f"{replaced} characters not valid {encoding}")
                return None
            self.replaced += replaced > 0
        return Document(text=text, id=doc_id(self.shard, index), url=url, metadata=meta)


def _block_consistent(mm: mmap.mmap, pos: int, gz: bool) -> bool:
    """Does the record at `pos` end, by its Content-Length, where the next record (or the end of its gzip
    member / the file) begins, with at most the `\\r\\n\\r\\n` separator between?"""
    if gz:
        d = zlib.decompressobj(31)
        try:
            data = d.decompress(mm[pos : pos + (64 << 20)], 64 << 20)
        except zlib.error:
            return False
    else:
        data = mm[pos : pos + (64 << 20)]
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = None
    for line in data[:end].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            try:
                length = int(line.split(b":", 1)[1])
            except ValueError:
                return False
    if length is None or len(data) < end + 4 + length:  # the block runs past its member / the file
        return False
    after = data[end + 4 + length : end + 4 + length + 16]
    rest = after.lstrip(b"\r\n")  # writers that forget the separator still end the block right
    return (not rest and len(after) <= 4) or rest.startswith(WARC_MAGIC)


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
