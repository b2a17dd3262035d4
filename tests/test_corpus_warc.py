"""WARC/WET reading (corpus/warc.py): real Common Crawl excerpts, WARCs written by an independent writer
(warcio), and malformed files: a malformed record or file is skipped, counted and named, and the rest of
the shard is kept."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from corpus.filters import StepStats
from corpus.warc import clean_uri, read_pages

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples" / "warc"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} absent (shared real-data samples)")


def read(path: Path, shard: int = 0):
    stats = StepStats("extract", shard=shard)
    pages = list(read_pages(path, shard, stats))
    assert stats.docs_in == len(pages) + sum(stats.dropped.values())  # every page record accounted for
    return pages, stats


def write_warc(path: Path, records: list[tuple], gz_per_record: bool = True) -> None:
    """records: (kind, url, payload, http_headers) with kind response / revisit / conversion."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    raw = io.BytesIO()
    writer = WARCWriter(raw, gzip=gz_per_record)
    for kind, url, payload, headers in records:
        if kind == "conversion":
            rec = writer.create_warc_record(url, "conversion", payload=io.BytesIO(payload),
                                            warc_content_type="text/plain")
        elif kind == "revisit":
            http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
            rec = writer.create_revisit_record(url, digest="sha1:AAAA", refers_to_uri=url,
                                               refers_to_date="2024-01-01T00:00:00Z", http_headers=http)
        else:
            status, hdrs = headers
            http = StatusAndHeaders(status, hdrs, protocol="HTTP/1.1")
            rec = writer.create_warc_record(url, "response", payload=io.BytesIO(payload), http_headers=http)
        writer.write_record(rec)
    path.write_bytes(raw.getvalue())


HTML = "<html><body><p>Let $x^2 = 4$. Then $x = \\pm 2$.</p></body></html>"


def test_pages_from_an_independently_written_warc(tmp_path):
    latin = "<html><head><meta charset='iso-8859-1'></head><body><p>Caf\u00e9 na\u00efve \u00bd</p></body></html>"
    write_warc(tmp_path / "a.warc.gz", [
        ("response", "https://example.org/a", HTML.encode(), ("200 OK", [("Content-Type", "text/html; charset=utf-8")])),
        ("response", "https://example.org/latin", latin.encode("latin-1"),
         ("200 OK", [("Content-Type", "text/html; charset=iso-8859-1")])),
        ("response", "https://example.org/missing", b"<html>gone</html>", ("404 Not Found", [("Content-Type", "text/html")])),
        ("response", "https://example.org/img.png", b"\x89PNG....", ("200 OK", [("Content-Type", "image/png")])),
        ("revisit", "https://example.org/a", b"", [("Content-Type", "text/html")]),
        ("conversion", "https://example.org/wet", b"plain text of a page with $y = mx + b$", None),
    ])
    pages, stats = read(tmp_path / "a.warc.gz", shard=3)
    assert [p.url for p in pages] == ["https://example.org/a", "https://example.org/latin", "https://example.org/wet"]
    assert pages[0].id == "s0003-0000000" and pages[0].text == HTML
    assert "Caf\u00e9 na\u00efve \u00bd" in pages[1].text  # charset from the HTTP header honoured
    assert pages[2].metadata["content_type"] == "text/plain" and "$y = mx + b$" in pages[2].text
    assert dict(stats.dropped) == {"http_status": 1, "not_html": 1, "revisit": 1}
    assert stats.errors == []


def test_an_uncompressed_warc_reads_the_same(tmp_path):
    rec = [("response", "https://example.org/a", HTML.encode(), ("200 OK", [("Content-Type", "text/html")]))]
    write_warc(tmp_path / "a.warc", rec, gz_per_record=False)
    pages, stats = read(tmp_path / "a.warc")
    assert [p.text for p in pages] == [HTML] and not stats.dropped


@needs_samples
def test_real_common_crawl_warc_and_wet():
    pages, stats = read(SAMPLES / "resiliparse_warcfile_CC-MAIN-2020-34.warc.gz")
    assert len(pages) == 16 and stats.docs_in == 16 and not stats.errors
    assert all(p.url.startswith("http") and p.metadata["content_type"] == "text/html" for p in pages)
    wet, _ = read(SAMPLES / "whirlwind.warc.wet.gz")
    assert [p.url for p in wet] == ["https://an.wikipedia.org/wiki/Escopete"] and "Escopete" in wet[0].text
    wget, _ = read(SAMPLES / "dolma_sample-0000.warc.gz")  # wget writes WARC-Target-URI as <...>
    assert len(wget) == 22 and all(not p.url.startswith("<") for p in wget)


@needs_samples
@pytest.mark.parametrize("name, n_pages, dropped", [
    ("warcio_example-trunc.warc", 1, {"malformed_record": 1}),           # truncated uncompressed file
    ("warcio_example-bad-non-chunked.warc.gz", 1, {"revisit": 1}),        # one gzip member for the whole file
    ("warcio_example-wrong-chunks.warc.gz", 1, {}),                       # gzip members split mid-record
    ("warcio_example-wget-bad-target-uri.warc.gz", 1, {}),
    ("warcio_example-space-in-target-uri.warc.gz", 0, {}),                # a resource record: not a page
])
def test_real_malformed_warcs(name, n_pages, dropped):
    pages, stats = read(SAMPLES / "malformed" / name)
    assert len(pages) == n_pages and dict(stats.dropped) == dropped
    assert all(p.url == "http://example.com/" for p in pages)
    for err in stats.errors:  # a malformed record is named: file, offset, message
        assert err["file"].endswith(name) and err["offset"] is not None and err["message"]


@needs_samples
def test_a_corrupt_gzip_member_loses_only_its_record(tmp_path):
    data = bytearray((SAMPLES / "dolma_sample-0000.warc.gz").read_bytes())
    offsets = _member_offsets(bytes(data))
    victim = offsets[len(offsets) // 2]  # corrupt the middle of one member
    for i in range(victim + 40, victim + 80):
        data[i] ^= 0xFF
    (tmp_path / "corrupt.warc.gz").write_bytes(bytes(data))
    pages, stats = read(tmp_path / "corrupt.warc.gz")
    good, _ = read(SAMPLES / "dolma_sample-0000.warc.gz")
    assert stats.dropped["malformed_record"] == 1 and len(stats.errors) == 1
    assert len(pages) >= len(good) - 1  # at most the corrupt record is lost, the shard goes on after it
    assert {p.url for p in pages} <= {p.url for p in good}


@needs_samples
def test_a_truncated_file_keeps_its_complete_records(tmp_path):
    data = (SAMPLES / "dolma_sample-0000.warc.gz").read_bytes()
    (tmp_path / "trunc.warc.gz").write_bytes(data[: len(data) // 2])
    pages, stats = read(tmp_path / "trunc.warc.gz")
    assert 5 < len(pages) < 22
    assert stats.dropped == {"malformed_record": 1}
    assert "truncated payload" in stats.errors[0]["message"] and stats.errors[0]["url"]


@pytest.mark.parametrize("content", [b"", b"this is not a WARC file at all\n" * 20, bytes(range(256)) * 8])
def test_a_file_without_any_record_is_a_malformed_file(tmp_path, content):
    path = tmp_path / "bad.warc.gz"
    path.write_bytes(content)
    pages, stats = read(path)
    assert pages == [] and dict(stats.dropped) == {"malformed_file": 1}
    assert stats.errors[0]["reason"] == "malformed_file" and stats.errors[0]["file"] == str(path)


def test_a_missing_file_is_named_not_raised(tmp_path):
    pages, stats = read(tmp_path / "nope.warc.gz")
    assert pages == [] and stats.dropped == {"malformed_file": 1} and "nope.warc.gz" in stats.errors[0]["file"]


def test_clean_uri():
    assert clean_uri("<https://a.org/x>") == "https://a.org/x"
    assert clean_uri(" https://a.org/a b ") == "https://a.org/a%20b"
    assert clean_uri(None) == ""


def _member_offsets(data: bytes) -> list[int]:
    import zlib

    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
    assert gzip.decompress(data)  # a valid multi-member file
    return offsets
