"""The corpus stage's inputs (corpus/sources.py): seed and benchmark files with bad records skipped and
counted, and the Common Crawl download code, run against a local HTTP server (no network)."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.sources import (
    benchmark_specs,
    build_benchmarks,
    build_seed,
    cc_listing_url,
    download,
    listing_entry,
)

SEED_SPEC = {"data": None, "hub": None, "hub_configs": [], "split": "train", "text_field": "text", "url_field": "url",
             "max_docs": 10}


def test_seed_from_jsonl_skips_and_counts_bad_records(tmp_path):
    src = tmp_path / "seed.jsonl"
    src.write_text('{"url": "u1", "text": "math one"}\nnot json\n[1, 2]\n{"url": "u2"}\n\n{"text": "math two"}\n')
    report = build_seed({**SEED_SPEC, "data": str(src)}, tmp_path / "seed.parquet")
    t = pq.read_table(tmp_path / "seed.parquet").to_pydict()
    assert t == {"url": ["u1", ""], "text": ["math one", "math two"]}
    assert report["docs"] == 2 and sum(report["skipped"].values()) == 3
    assert any("seed.jsonl:2" in e for e in report["skipped_examples"])


def test_seed_from_parquet_with_max_docs_and_an_empty_seed_raises(tmp_path):
    pq.write_table(pa.table({"page": [f"t{i}" for i in range(20)]}), tmp_path / "s.parquet")
    report = build_seed({**SEED_SPEC, "data": str(tmp_path / "s.parquet"), "text_field": "page"}, tmp_path / "o.parquet")
    assert report["docs"] == 10
    with pytest.raises(ValueError, match="no seed page"):
        build_seed({**SEED_SPEC, "data": str(tmp_path / "s.parquet")}, tmp_path / "o2.parquet")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        build_seed({**SEED_SPEC, "data": str(tmp_path / "missing.jsonl")}, tmp_path / "o3.parquet")


def test_benchmarks_default_to_the_world_and_record_every_field(tmp_path):
    (tmp_path / "test_gsm8k.jsonl").write_text(json.dumps({"question": "Q one two", "answer": "x <<1+1=2>>2\n#### 2"}) + "\n")
    (tmp_path / "test_math.jsonl").write_text(json.dumps({"problem": "P", "solution": "S"}) + "\n" + json.dumps({"problem": "P2"}) + "\n")
    specs = benchmark_specs({"corpus": {"benchmarks": []}}, tmp_path)
    assert [s["name"] for s in specs] == ["world_gsm8k", "world_math"]
    report = build_benchmarks(specs, tmp_path / "b.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and "<<" not in rows[1]["text"]
    assert report["world_math"] == {"source": str(tmp_path / "test_math.jsonl"), "records": 2, "texts": 3,
                                    "skipped": {"no text in field 'solution'": 1}}
    with pytest.raises(ValueError, match="no text"):
        build_benchmarks([{"name": "x", "data": str(tmp_path / "test_math.jsonl"), "fields": ["nope"]}], tmp_path / "c.jsonl")


@pytest.mark.parametrize("source", ["files", "commoncrawl"])
def test_real_pages_without_benchmarks_are_an_error_not_the_world_fallback(tmp_path, source):
    with pytest.raises(ValueError, match=f"corpus.benchmarks is empty but corpus.source is '{source}'"):
        benchmark_specs({"corpus": {"source": source, "benchmarks": []}}, tmp_path)
    given = [{"name": "gsm8k", "data": "g.jsonl", "fields": ["question"]}]
    assert benchmark_specs({"corpus": {"source": source, "benchmarks": given}}, None) == given


@pytest.fixture()
def http_root(tmp_path):
    """A local HTTP server (127.0.0.1) serving tmp_path, stopped after the test."""
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_common_crawl_listing_and_file_download(http_root, tmp_path):
    root, base = http_root
    listing = root / "crawl-data/CC-MAIN-2023-50/warc.paths.gz"
    listing.parent.mkdir(parents=True)
    paths = [f"crawl-data/CC-MAIN-2023-50/segments/1/warc/f{i}.warc.gz" for i in range(3)]
    listing.write_bytes(gzip.compress(("\n".join(paths) + "\n").encode()))
    (root / paths[1]).parent.mkdir(parents=True)
    (root / paths[1]).write_bytes(b"WARC/1.1 fake bytes" * 100)
    url = cc_listing_url(base, "CC-MAIN-2023-50", "warc")
    assert url == base + "crawl-data/CC-MAIN-2023-50/warc.paths.gz"
    out = tmp_path / "dl" / "warc.paths.gz"
    assert download(url, out, timeout=10, retries=0) == listing.stat().st_size
    assert listing_entry(out, 1) == paths[1]
    with pytest.raises(ValueError, match="fewer than 4 entries"):
        listing_entry(out, 3)
    got = tmp_path / "dl" / "shard-0001.warc.gz"
    download(base + listing_entry(out, 1), got, timeout=10, retries=0)
    assert got.read_bytes() == (root / paths[1]).read_bytes()


def test_a_failed_download_leaves_no_file_and_names_the_url(http_root, tmp_path):
    _, base = http_root
    out = tmp_path / "x" / "missing.warc.gz"
    with pytest.raises(RuntimeError, match="missing.warc.gz failed after 1 attempts"):
        download(base + "missing.warc.gz", out, timeout=10, retries=0)
    assert not out.exists() and not any(Path(out.parent).glob("*"))
