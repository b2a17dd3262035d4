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
    # The response's Content-Length is 2 bytes short of its block (warcio warns "Record not followed by
    # newline"): an under-run, named, never a page with a cut body.
    ("warcio_example-trunc.warc", 0, {"content_length_mismatch": 1}),
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
    assert sum(stats.dropped.values()) == 1 and len(stats.errors) == 1
    assert len(pages) >= len(good) - 1  # at most the corrupt record is lost, the shard goes on after it
    assert {p.url for p in pages} <= {p.url for p in good}


@needs_samples
def test_a_truncated_file_keeps_its_complete_records(tmp_path):
    data = (SAMPLES / "dolma_sample-0000.warc.gz").read_bytes()
    (tmp_path / "trunc.warc.gz").write_bytes(data[: len(data) // 2])
    pages, stats = read(tmp_path / "trunc.warc.gz")
    assert 5 < len(pages) < 22
    assert stats.dropped == {"truncated_record": 1}
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


# One small malformed WARC per failure class (issue #18), written here byte by byte: each bad record is
# named and counted once, its good neighbours are kept, and no record comes out twice.

BODY = b"<html><body><p>" + b"A good page about primes and their gaps. " * 8 + b"</p></body></html>"


def raw_record(url: str, body: bytes = BODY, length: int | str | None = None, ctype: bytes = b"text/html") -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\n\r\n" + body
    declared = str(len(http) if length is None else length).encode()
    return (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: " + url.encode() + b"\r\nWARC-Record-ID: <urn:uuid:"
            + url.encode() + b">\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: " + declared
            + b"\r\n\r\n" + http + b"\r\n\r\n")


def good(i: int) -> bytes:
    return raw_record(f"https://ok.org/{i}")


def check_class(tmp_path, name: str, records: list[bytes], reason: str, gz: bool, kept: list[int]):
    data = b"".join(gzip.compress(r) for r in records) if gz else b"".join(records)
    path = tmp_path / (name + (".warc.gz" if gz else ".warc"))
    path.write_bytes(data)
    pages, stats = read(path)
    urls = [p.url for p in pages]
    assert urls == [f"https://ok.org/{i}" for i in kept], (name, urls, dict(stats.dropped))  # never twice
    assert dict(stats.dropped) == {reason: 1}, (name, dict(stats.dropped), stats.errors)
    assert [e["reason"] for e in stats.errors] == [reason] and stats.errors[0]["file"] == str(path)
    assert all("WARC/1." not in p.text and "WARC-Type" not in p.text for p in pages)
    return stats


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_truncated_final_record(tmp_path, gz):
    last = good(3)
    cut = gzip.compress(last)[:-40] if gz else last[:150]  # header cut (plain) or payload cut (gzip)
    data = b"".join(gzip.compress(good(i)) if gz else good(i) for i in (1, 2)) + cut
    (tmp_path / "t.warc").write_bytes(data)
    pages, stats = read(tmp_path / "t.warc")
    assert [p.url for p in pages] == ["https://ok.org/1", "https://ok.org/2"]
    assert dict(stats.dropped) in ({"truncated_record": 1}, {"malformed_region": 1}), stats.errors
    assert len(stats.errors) == 1


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("delta", [+200, -60], ids=["overrun", "underrun"])
def test_content_length_over_and_under_run(tmp_path, gz, delta):
    http_len = len(raw_record("https://bad.org/x").split(b"\r\n\r\n", 1)[1]) - 4
    bad = raw_record("https://bad.org/x", length=http_len + delta)
    check_class(tmp_path, "len", [good(1), bad, good(3), good(4)], "content_length_mismatch", gz, [1, 3, 4])


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_invalid_content_length_counts_once(tmp_path, gz):
    bad = raw_record("https://bad.org/x", length="abc")
    stats = check_class(tmp_path, "inv", [good(1), bad, good(3)], "invalid_header", gz, [1, 3])
    assert stats.docs_in == 3


def test_corrupt_gzip_member_resyncs(tmp_path):
    members = [gzip.compress(good(i)) for i in (1, 2, 3)]
    broken = bytearray(members[1])
    for i in range(20, 60):
        broken[i] ^= 0xFF
    path = tmp_path / "c.warc.gz"
    path.write_bytes(members[0] + bytes(broken) + members[2])
    pages, stats = read(path)
    assert [p.url for p in pages] == ["https://ok.org/1", "https://ok.org/3"]
    assert dict(stats.dropped) == {"malformed_region": 1} and stats.errors[0]["offset"] is not None


@pytest.mark.parametrize("body, ctype", [
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>stream\n" + bytes(range(256)) * 4, b"text/html"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, b"text/html"),
    (b"<html>" + bytes(range(0, 32)) * 40 + b"</html>", b"text/html; charset=utf-8"),  # control bytes
])
def test_binary_bodies_served_as_html_are_not_text(tmp_path, body, ctype):
    bad = raw_record("https://bad.org/x", body=body, ctype=ctype)
    check_class(tmp_path, "bin", [good(1), bad, good(3)], "not_text", False, [1, 3])


def test_non_utf8_bytes(tmp_path):
    mostly_bad = b"<html><body>" + b"\xff\xfe\xc3\x28" * 200 + b"</body></html>"
    bad = raw_record("https://bad.org/x", body=mostly_bad, ctype=b"text/html; charset=utf-8")
    check_class(tmp_path, "enc", [good(1), bad, good(3)], "undecodable", False, [1, 3])
    few = raw_record("https://ok.org/2", body=BODY.replace(b"primes", b"prim\xe9s", 1), ctype=b"text/html; charset=utf-8")
    (tmp_path / "few.warc").write_bytes(good(1) + few)
    pages, stats = read(tmp_path / "few.warc")
    assert len(pages) == 2 and stats.extra["decoded_with_replacement"] == 1 and "prim\ufffds" in pages[1].text


def test_a_record_over_the_size_limit_is_skipped_unread(tmp_path):
    big = raw_record("https://bad.org/big", body=b"<html><body>" + b"x" * 300_000 + b"</body></html>")
    path = tmp_path / "big.warc"
    path.write_bytes(good(1) + big + good(3))
    stats = StepStats("extract")
    pages = list(read_pages(path, 0, stats, max_record_bytes=100_000))
    assert [p.url for p in pages] == ["https://ok.org/1", "https://ok.org/3"]
    assert dict(stats.dropped) == {"too_large": 1} and "max_record_bytes 100000" in stats.errors[0]["message"]
