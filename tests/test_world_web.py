"""The generated web: valid WARC (read by warcio and fastwarc), labels that match it, dups, seed, contamination."""

from __future__ import annotations

import gzip
import html
import json
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from fastwarc.warc import ArchiveIterator as FastIterator
from fastwarc.warc import WarcRecordType
from resiliparse.extract.html2text import extract_plain_text

from corpus.decontaminate import NgramMatcher
from tests.conftest import shared_data
from world.problem import near_key
from world.problems import ProblemSettings, generate
from world.web import WebSettings, build_web, crawl_date, main, read_test_items, write_web

warcio_iter = pytest.importorskip("warcio.archiveiterator", reason="warcio (the independent reader) not installed")

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = WebSettings(pages=400, domains=16, shards=3, seed_pages=30, contaminated_pages=6)
LABEL_KEYS = {"url", "is_math", "domain", "dup_cluster", "contaminated"}


@pytest.fixture(scope="module")
def test_items():
    records, _ = generate(ProblemSettings(sft=0, rl=0, test_gsm8k=40, test_math=40), seed=0)
    return [(r["question"], r["answer"]) for r in records["test_gsm8k"]] + \
           [(r["problem"], r["solution"]) for r in records["test_math"]]


@pytest.fixture(scope="module")
def web(tmp_path_factory, test_items):
    out = tmp_path_factory.mktemp("web")
    shards, labels, seed_rows, stats = build_web(SETTINGS, 0, test_items, max_steps=3, max_number=9)
    write_web(out, shards, labels, seed_rows, SETTINGS.crawls, 0)
    return out, stats


def _labels(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]


def _responses_warcio(out: Path) -> list[tuple[dict, str]]:
    """(WARC headers, HTML) of every response record, in file order, read by warcio with digest checks."""
    rows = []
    for shard in sorted(out.glob("shard-*.warc.gz")):
        with open(shard, "rb") as f:
            kinds = []
            for rec in warcio_iter.ArchiveIterator(f, check_digests="raise"):
                kinds.append(rec.rec_type)
                if rec.rec_type != "response":
                    continue
                assert rec.http_headers.get_statuscode() == "200"
                assert rec.http_headers.get_header("Content-Type") == "text/html; charset=utf-8"
                rows.append((dict(rec.rec_headers.headers), rec.content_stream().read().decode("utf-8")))
            assert kinds[0] == "warcinfo" and set(kinds[1:]) == {"response"}, shard
    return rows


def test_warc_is_valid_for_warcio(web):
    out, stats = web
    rows = _responses_warcio(out)
    assert len(rows) == stats["records"]
    for headers, body in rows:
        assert headers["WARC-Type"] == "response"
        assert headers["Content-Type"] == "application/http; msgtype=response"
        assert headers["WARC-Record-ID"].startswith("<urn:uuid:")
        assert headers["WARC-Date"].endswith("Z") and headers["WARC-Target-URI"].startswith("https://")
        assert body.startswith("<!DOCTYPE html>") and body.rstrip().endswith("</html>")


def test_warc_is_valid_for_fastwarc_with_digests(web):
    out, stats = web
    n = 0
    for shard in sorted(out.glob("shard-*.warc.gz")):
        for rec in FastIterator(str(shard), record_types=WarcRecordType.response, parse_http=False):
            assert rec.verify_block_digest()
            n += 1
        for rec in FastIterator(str(shard), record_types=WarcRecordType.response, parse_http=True):
            assert rec.verify_payload_digest()
            assert rec.http_charset == "utf-8"
    assert n == stats["records"]


def test_one_gzip_member_per_record(web):
    out, _ = web
    for shard in sorted(out.glob("shard-*.warc.gz")):
        data, members = shard.read_bytes(), 0
        while data:
            d = zlib.decompressobj(wbits=31)
            d.decompress(data)
            data, members = d.unused_data, members + 1
        with gzip.open(shard, "rb") as f:
            records = f.read().count(b"WARC/1.1\r\n")
        assert members == records and members > 1, shard


def test_labels_match_the_records(web):
    out, stats = web
    labels, rows = _labels(out), _responses_warcio(out)
    assert len(labels) == len(rows) == stats["records"]
    for label, (headers, _) in zip(labels, rows):
        assert LABEL_KEYS <= set(label)
        assert label["url"] == headers["WARC-Target-URI"]
        assert f"<{label['record_id']}>" == headers["WARC-Record-ID"]
        assert label["domain"] == label["url"].split("/")[2]
    assert len({lab["record_id"] for lab in labels}) == len(labels)
    files = sorted(out.glob("shard-*.warc.gz"))
    assert len(files) == SETTINGS.shards and {lab["shard"] for lab in labels} == set(range(SETTINGS.shards))


def test_math_share_and_domain_structure(web):
    out, _ = web
    labels = [lab for lab in _labels(out) if lab["dup_kind"] == "original" and not lab["contaminated"]]
    share = sum(lab["is_math"] for lab in labels) / len(labels)
    assert abs(share - SETTINGS.math_fraction) < 0.02
    by_domain = defaultdict(list)
    for lab in labels:
        by_domain[lab["domain"]].append(lab)
    mixed = [d for d, labs in by_domain.items() if 0 < sum(x["is_math"] for x in labs) < len(labs)]
    assert mixed, "no mixed domain"
    for d in mixed:  # math lives under its own URL paths, above the 10% discovery threshold
        labs = by_domain[d]
        paths = defaultdict(set)
        for x in labs:
            paths[x["path_kind"]].add(x["is_math"])
        assert all(len(v) == 1 for v in paths.values()), (d, paths)
        assert 0.1 < sum(x["is_math"] for x in labs) / len(labs) < 0.9
    kinds = Counter(lab["page_kind"] for lab in labels)
    for kind in ("prices", "scores", "timetable", "recipe", "code", "worked_problem", "qa_thread", "homework_qa",
                 "answer_key"):
        assert kinds[kind] > 0, kind


def test_duplicates_are_labelled_as_clusters(web):
    out, _ = web
    labels = _labels(out)
    clusters = defaultdict(list)
    for lab in labels:
        if lab["dup_cluster"] is not None:
            clusters[lab["dup_cluster"]].append(lab)
    assert clusters
    for members in clusters.values():
        assert len(members) >= 2 and sum(m["dup_kind"] == "original" for m in members) == 1
        original = next(m for m in members if m["dup_kind"] == "original")
        for m in members:
            if m["dup_kind"] == "url_dup":
                assert m["url"] == original["url"] and m["crawl"] != original["crawl"]
            if m["dup_kind"] == "near_dup":
                assert m["url"] != original["url"] and "/print/" in m["url"]
    assert all(lab["dup_cluster"] is None for lab in labels if lab["dup_kind"] == "original"
               and lab["url"] not in {m["url"] for ms in clusters.values() for m in ms})


def test_near_duplicates_share_content_but_not_boilerplate(web):
    out, _ = web
    labels, rows = _labels(out), _responses_warcio(out)
    bodies = {(lab["url"], lab["dup_kind"]): body for lab, (_, body) in zip(labels, rows)}
    near = [lab for lab in labels if lab["dup_kind"] == "near_dup"]
    assert near
    for lab in near:
        original_url = lab["url"].replace("/print/", "/", 1)
        a, b = bodies[(original_url, "original")], bodies[(lab["url"], "near_dup")]
        assert a != b
        assert _article_body(a) == _article_body(b)


def _article_body(page: str) -> str:
    """The article after its title and date line."""
    return page[page.index("<article>"):page.index("</article>")].split("\n", 3)[3]


def test_only_contaminated_pages_quote_test_problems(web, test_items):
    out, stats = web
    labels, rows = _labels(out), _responses_warcio(out)
    assert stats["contaminated_records"] >= SETTINGS.contaminated_pages
    questions = [q for q, _ in test_items]
    keys = {near_key(q) for q in questions}
    for lab, (_, body) in zip(labels, rows):
        text = html.unescape(body)
        quoted = [q for q in questions if q in text]
        assert bool(quoted) == lab["contaminated"], lab["url"]
        if lab["contaminated"]:
            assert lab["is_math"]
    # Worked problems on clean pages are from the same templates, never near-copies of a test problem.
    assert not any(near_key(q) in keys for q in _clean_questions(labels, rows))


def _clean_questions(labels, rows):
    import re

    for lab, (_, body) in zip(labels, rows):
        if lab["is_math"] and not lab["contaminated"]:
            for m in re.finditer(r"<blockquote>(.*?)</blockquote>|<h2>Problem</h2>\n<p>(.*?)</p>", body, re.DOTALL):
                yield html.unescape(m.group(1) or m.group(2)).replace("\\(", "$").replace("\\)", "$")


def test_decontamination_finds_exactly_the_contaminated_pages(web, test_items):
    """The corpus stage's rule on extracted text: clean pages share no n-gram with a test text."""
    out, _ = web
    texts = [("test", t) for item in test_items for t in item]
    matcher = NgramMatcher.from_texts(texts, n=ProblemSettings().clean_ngram, min_exact=3)
    for lab, (_, body) in zip(_labels(out), _responses_warcio(out)):
        found = matcher.find(extract_plain_text(body, main_content=False))
        assert (found is not None) == lab["contaminated"], (lab["url"], found)


def test_seed_covers_only_part_of_the_math_domains(web):
    out, stats = web
    labels = _labels(out)
    seed = [json.loads(line) for line in (out / "seed.jsonl").read_text().splitlines()]
    assert len(seed) == SETTINGS.seed_pages
    by_url = {lab["url"]: lab for lab in labels}
    for row in seed:
        assert set(row) == {"url", "text"} and row["text"].strip()
        assert by_url[row["url"]]["is_math"] and by_url[row["url"]]["in_seed"]
    seed_domains = {by_url[r["url"]]["domain"] for r in seed}
    math_domains = {lab["domain"] for lab in labels if lab["is_math"]}
    assert seed_domains < math_domains and len(seed_domains) <= len(math_domains) / 2
    assert sum("\\boxed{" in r["text"] or "$" in r["text"] for r in seed) == len(seed)


def test_math_pages_use_mathjax_and_mathml(web):
    out, _ = web
    labels, rows = _labels(out), _responses_warcio(out)
    math_bodies = [b for lab, (_, b) in zip(labels, rows) if lab["is_math"]]
    assert all("mathjax" in b for b in math_bodies)
    assert any("<math" in b for b in math_bodies)
    assert any("\\(" in b for b in math_bodies) and any("$" in b for b in math_bodies)
    code_pages = [b for lab, (_, b) in zip(labels, rows) if lab["page_kind"] == "code"]
    assert code_pages and all("mathjax" in b and "\\(" not in b for b in code_pages)


def test_same_seed_gives_byte_identical_files(web, tmp_path, test_items):
    out, _ = web
    shards, labels, seed_rows, _ = build_web(SETTINGS, 0, test_items, max_steps=3, max_number=9)
    write_web(tmp_path, shards, labels, seed_rows, SETTINGS.crawls, 0)
    for f in sorted(out.glob("*.*")):
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f.name
    other = build_web(SETTINGS, 1, test_items, max_steps=3, max_number=9)[1]
    assert [lab["url"] for lab in other] != [lab["url"] for lab in labels]


@pytest.mark.shared
def test_records_carry_the_headers_of_real_common_crawl(web):
    real = shared_data("corpus_samples", "warc", "resiliparse_warcfile_CC-MAIN-2020-34.warc.gz")
    out, _ = web
    wanted = {"WARC-Type", "WARC-Date", "WARC-Record-ID", "Content-Length", "Content-Type", "WARC-Target-URI",
              "WARC-Payload-Digest", "WARC-Block-Digest"}
    for path in (real, next(out.glob("shard-*.warc.gz"))):
        rec = next(iter(FastIterator(str(path), record_types=WarcRecordType.response)))
        assert wanted <= set(rec.headers.keys()), (path, set(rec.headers.keys()))


def test_cli_reads_the_test_files(tmp_path, test_items):
    problems = tmp_path / "problems"
    problems.mkdir()
    gsm = [{"question": q, "answer": a} for q, a in test_items if "####" in a]
    math = [{"problem": q, "solution": a, "answer": "1", "subject": "Algebra", "level": 1, "unique_id": f"u{i}"}
            for i, (q, a) in enumerate(test_items) if "####" not in a]
    (problems / "test_gsm8k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gsm))
    (problems / "test_math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in math))
    assert len(read_test_items(problems / "test_gsm8k.jsonl", problems / "test_math.jsonl")) == len(test_items)
    out = tmp_path / "web"
    main(["--config", str(ROOT / "config/smoke.yaml"), "--out-dir", str(out), "--test-gsm8k", str(problems / "test_gsm8k.jsonl"),
          "--test-math", str(problems / "test_math.jsonl"), "--set", "world.web.pages=120",
          "--set", "world.web.domains=10", "--set", "world.web.seed_pages=5"])
    run = json.loads((out / "run.json").read_text())
    assert len(_labels(out)) == run["stats"]["records"] > 120


def test_a_broken_test_file_is_named(tmp_path):
    good, bad = tmp_path / "g.jsonl", tmp_path / "m.jsonl"
    good.write_text(json.dumps({"question": "q?", "answer": "a\n#### 1"}) + "\n")
    bad.write_text(json.dumps({"problem": "p?", "solution": "s"}) + "\n" + json.dumps({"problem": "p2"}) + "\n")
    with pytest.raises(ValueError, match=r"m\.jsonl:2: .*solution"):
        read_test_items(good, bad)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="CC-MAIN"):
        crawl_date("2024-10")
    with pytest.raises(ValueError, match="pages >= domains"):
        WebSettings.from_config({"pages": 10, "domains": 20})
