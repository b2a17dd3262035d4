"""Write Common Crawl-style WARC files: WARC/1.1, one gzip member per record, HTTP response records.

Paper §2.1 mines Common Crawl; the generated web is written in the same container so the corpus stage
reads it with the reader it uses on real crawls (fastwarc / warcio). Records are formatted by
fastwarc (headers, block and payload digests); each is compressed as its own gzip member, as Common
Crawl does, so a reader can seek to any record. Dates and record ids come from the caller, and gzip
headers carry no timestamp, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from fastwarc.warc import WarcRecord, WarcRecordType


@dataclass(frozen=True)
class WebRecord:
    """One crawled page: what goes into a `response` record."""

    url: str
    html: str
    date: datetime  # crawl time (UTC)
    record_id: str  # "urn:uuid:..." without the angle brackets


def warc_date(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_response(html: str, date: datetime) -> tuple[bytes, bytes]:
    """(HTTP/1.1 200 response with headers, its body) for an HTML page in UTF-8."""
    body = html.encode("utf-8")
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Date: {format_datetime(date.astimezone(UTC), usegmt=True)}\r\n"
        "Server: nginx\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body, body


def _record(record_type: WarcRecordType, record_id: str, date: datetime, content: bytes,
            headers: dict[str, str], payload: bytes | None = None) -> bytes:
    rec = WarcRecord()
    rec.init_headers(record_type=record_type, record_urn=record_id.removeprefix("urn:").encode("ascii"))
    rec.headers["WARC-Date"] = warc_date(date)
    for key, value in headers.items():
        rec.headers[key] = value
    rec.set_bytes_content(content)
    buf = io.BytesIO()
    digest = hashlib.sha1(payload).digest() if payload is not None else None
    rec.write(buf, checksum_data=True, payload_digest=digest)
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


def write_warc(path: str | Path, records: Iterable[WebRecord], info_id: str, info_date: datetime,
               info_fields: dict[str, str]) -> int:
    """Write a `warcinfo` record then one `response` record per page. Returns the number of pages.

    `path` should be a temporary file; the caller renames it into place (pipeline.io.atomic_path).
    """
    info = "".join(f"{k}: {v}\r\n" for k, v in info_fields.items()).encode("utf-8")
    n = 0
    with open(path, "wb") as f:
        f.write(_record(WarcRecordType.warcinfo, info_id, info_date, info,
                        {"Content-Type": "application/warc-fields", "WARC-Filename": Path(path).name}))
        for r in records:
            block, body = http_response(r.html, r.date)
            f.write(_record(WarcRecordType.response, r.record_id, r.date, block, {
                "WARC-Target-URI": r.url,
                "Content-Type": "application/http; msgtype=response",
                "WARC-Warcinfo-ID": f"<{info_id}>",
                "WARC-Identified-Payload-Type": "text/html",
            }, payload=body))
            n += 1
    return n
