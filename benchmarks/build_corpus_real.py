"""Build WARC shards of real web pages for the corpus stage's real-page test and benchmark (issue #18).

Math pages: the 987 StackMathQA records of /work/shared/data/corpus_samples (real Q&A of three
StackExchange sites: mathoverflow.net, stats.stackexchange.com, physics.stackexchange.com), grouped by
question URL (871 questions: a question and all its answers make one page, as on the site) and wrapped
in a StackExchange-like HTML page that loads MathJax, the LaTeX left as the site serves it (`$...$`).
The HTML wrapper is ours; the text is the sites'.

Non-math pages: the real crawled pages of the shared samples (dolma's wget crawls, a Common Crawl
excerpt, 20 CCNet documents) and, for a realistic math share (math is a few percent of Common Crawl),
the HTML documentation pages of Debian documentation packages: fetched with `apt-get download`, unpacked
with `dpkg -x`, cached under `--cache`. Each package is one host (`<name>.readthedocs.io`, its files'
paths under the HTML folder as URL paths): many Sphinx sites, plus bash and git manuals full of `$`
shell variables (the hard negatives of the issue).

The seed is ONE site's pages (mathoverflow.net by default): `seed.jsonl` (text, url), the positives a
user would bring (OpenWebMath in the paper). Seed pages are in the pool too (OpenWebMath came from Common
Crawl). `labels.jsonl` holds url, site, is_math, in_seed for every page; the stage never reads it.

    python -m benchmarks.build_corpus_real --out results/corpus_real/b --nonmath 24000 --shards 4
    python -m benchmarks.build_corpus_real --out results/corpus_real/a --nonmath 0 --shards 1   # math-rich
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import logging
import random
import subprocess
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from corpus.extract import html_to_text
from corpus.filters import StepStats
from corpus.warc import read_pages
from world.warc import WebRecord, write_warc

log = logging.getLogger("benchmarks.build_corpus_real")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples"
DEFAULT_CACHE = Path.home() / ".cache" / "mathpipe" / "debian_docs"
MATHJAX = '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js" async></script>'

# Documentation packages of Debian bookworm (python-*-doc sampled every 5th from those of 0.3-12 MB,
# libraries of numerics/statistics/science left out: their docs are math), plus bash and git manuals.
DEBIAN_DOCS = """
bash-doc git-doc python-acme-doc python-aiohttp-security-doc python-aodhclient-doc python-ara-doc
python-authlib-doc python-betamax-doc python-bitstring-doc python-bottle-doc python-castellan-doc
python-chardet-doc python-cleo-doc python-cmd2-doc python-configobj-doc python-cycler-doc
python-django-braces-doc python-django-constance-doc python-django-extensions-doc python-django-otp-doc
python-django-treebeard-doc python-djvu-doc python-elasticsearch-doc python-eventlet-doc
python-flask-dance-doc python-flask-restful-doc python-fsspec-doc python-gabbi-doc python-gitlab-doc
python-hpilo-doc python-installer-doc python-itsdangerous-doc python-jpylyzer-doc python-kajiki-doc
python-kitchen-doc python-leather-doc python-llfuse-doc python-mako-doc python-mbed-ls-doc
python-migrate-doc python-nacl-doc python-nbsphinx-doc python-nose2-doc python-octavia-lib-doc
python-openstacksdk-doc python-os-ken-doc python-os-vif-doc python-oslo.concurrency-doc
python-oslo.limit-doc python-oslo.privsep-doc python-oslo.utils-doc python-osprofiler-doc
python-pankoclient-doc python-pecan-doc python-pex-doc python-pook-doc python-psutil-doc
python-py-stringmatching-doc python-pybtex-doc python-pygame-doc python-pygtrie-doc python-pymodbus-doc
python-pyrcb2-doc python-pysmi-doc python-qtawesome-doc python-rcon-doc python-requests-toolbelt-doc
python-searchlightclient-doc python-setuptools-doc python-sorl-thumbnail-doc python-sphinx-gallery-doc
python-structlog-doc python-tackerclient-doc python-testfixtures-doc python-tooz-doc
python-transliterate-doc python-txtorcon-doc python-uvicorn-doc python-vitrageclient-doc
python-webpy-doc python-ws4py-doc python-zstandard-doc python-django-doc python3.11-doc
postgresql-doc-15 sqlite3-doc
""".split()


def _paragraphs(markdown_text: str) -> str:
    return "\n".join(f"<p>{html.escape(p.strip())}</p>" for p in markdown_text.split("\n\n") if p.strip())


def math_pages() -> list[dict]:
    """One page per StackExchange question (all its answers on it), in the order of the file."""
    path = SHARED / "text/math_stackmathqa100k_files32-127.jsonl"
    by_url: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        url = rec["meta"]["url"]
        page = by_url.setdefault(url, {"url": url, "site": url.split("/")[2], "q": rec["Q"], "answers": []})
        page["answers"].append(rec["A"])
    pages = []
    for p in by_url.values():
        title = html.escape(p["q"].split("\n", 1)[0][:150])
        answers = "".join(f'<div class="answer">{_paragraphs(a)}</div>' for a in p["answers"])
        body = (f"<html><head><title>{title}</title>{MATHJAX}</head><body><div id=\"question\">"
                f"<h1>{title}</h1>{_paragraphs(p['q'])}</div><h2>{len(p['answers'])} Answers</h2>{answers}"
                "</body></html>")
        pages.append({"url": p["url"], "site": p["site"], "html": body, "is_math": True})
    return pages


def crawled_nonmath_pages() -> list[dict]:
    """The shared samples' real non-math pages: crawled HTML responses and CCNet documents."""
    pages = []
    for name in ("dolma_sample-0000.warc.gz", "dolma_sample-0001.warc.gz",
                 "resiliparse_warcfile_CC-MAIN-2020-34.warc.gz"):
        for doc in read_pages(SHARED / "warc" / name, 0, StepStats("build")):
            pages.append({"url": doc.url, "site": doc.url.split("/")[2], "html": doc.text, "is_math": False})
    for name in ("nonmath_dolma_cc_en_head-0091.jsonl.gz", "nonmath_dolma_cc_en_head-0174.jsonl.gz"):
        with gzip.open(SHARED / "text" / name, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                url = rec["metadata"]["url"]
                title = html.escape(rec["metadata"].get("title") or "")
                body = f"<html><head><title>{title}</title></head><body>{_paragraphs(rec['text'])}</body></html>"
                pages.append({"url": url, "site": url.split("/")[2], "html": body, "is_math": False})
    return pages


def fetch_debian_docs(cache: Path, packages: list[str]) -> Path:
    """`apt-get download` + `dpkg -x` each package into `cache/root` once (cached by a marker file)."""
    root = cache / "root"
    (cache / "debs").mkdir(parents=True, exist_ok=True)
    missing = [pkg for pkg in packages if not (cache / "done" / pkg).exists()]
    if missing:  # one apt-get call: its start (reading the package lists) costs more than a download
        proc = subprocess.run(["apt-get", "download", *missing], cwd=cache / "debs", capture_output=True, text=True)
        if proc.returncode != 0:
            log.warning("apt-get download: %s", proc.stderr.strip()[-500:])
    for pkg in missing:
        debs = sorted((cache / "debs").glob(f"{pkg}_*.deb"))
        if not debs:
            log.warning("%s: not downloaded (skipped)", pkg)
            continue
        (root / pkg).mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(root / pkg)], check=True)
        marker = cache / "done" / pkg
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(debs[-1].name)
    return root


def debian_doc_pages(cache: Path, n_pages: int, seed: int, max_per_host: int = 600) -> list[dict]:
    """Up to `n_pages` real documentation pages, at most `max_per_host` per package (host), sampled."""
    root = fetch_debian_docs(cache, DEBIAN_DOCS)
    rng = random.Random(seed)
    per_host: dict[str, list[Path]] = {}
    for pkg in DEBIAN_DOCS:
        files = sorted(p for p in (root / pkg).rglob("*.html") if p.is_file() and not p.is_symlink()
                       and p.name not in ("genindex.html", "search.html", "py-modindex.html"))
        if files:
            rng.shuffle(files)
            per_host[pkg] = files[:max_per_host]
    hosts = sorted(per_host)
    picked: list[tuple[str, Path]] = []
    while len(picked) < n_pages and any(per_host.values()):  # round-robin: every host gets its share
        for h in hosts:
            if per_host[h] and len(picked) < n_pages:
                picked.append((h, per_host[h].pop()))
    pages = []
    for pkg, path in picked:
        host = pkg.removeprefix("python-").removesuffix("-doc").replace(".", "-") + ".readthedocs.io"
        rel = str(path.relative_to(root / pkg)).split("/html/", 1)[-1]
        # quote: file names with spaces or Korean letters, as a crawler's URL (percent-encoded)
        pages.append({"url": f"https://{host}/{quote(rel)}", "site": host, "is_math": False,
                      "html": path.read_text(encoding="utf-8", errors="replace")})
    return pages


def build(out: Path, n_nonmath: int, shards: int, seed_site: str = "mathoverflow.net", seed_pages: int = 300,
          math_per_site: int | None = None, cache: Path = DEFAULT_CACHE, seed: int = 0) -> dict:
    """Write out/shard-*.warc.gz, out/seed.jsonl, out/labels.jsonl and out/manifest.json."""
    rng = random.Random(seed)
    by_site: dict[str, list[dict]] = defaultdict(list)
    for p in math_pages():
        by_site[p["site"]].append(p)
    math = []
    for site in sorted(by_site):
        math += by_site[site][:math_per_site] if math_per_site else by_site[site]
    seed_candidates = by_site[seed_site]  # the seed may hold pages the pool lacks (OpenWebMath vs one crawl)
    seed_urls = {p["url"] for p in rng.sample(seed_candidates, min(seed_pages, len(seed_candidates)))}
    other = crawled_nonmath_pages()
    if n_nonmath > len(other):
        other += debian_doc_pages(cache, n_nonmath - len(other), seed)
    other = other[:n_nonmath] if n_nonmath else other
    pages = math + other
    rng.shuffle(pages)
    out.mkdir(parents=True, exist_ok=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for s in range(shards):
        recs = [WebRecord(p["url"], p["html"], start + timedelta(seconds=i), f"urn:uuid:{s:08x}-0000-4000-8000-{i:012x}")
                for i, p in enumerate(pages[s::shards])]
        write_warc(out / f"shard-{s:04d}.warc.gz", recs, f"urn:uuid:{s:08x}-ffff-4000-8000-000000000000", start,
                   {"software": "mathpipe benchmarks.build_corpus_real", "isPartOf": "real-pages"})
    with open(out / "seed.jsonl", "w", encoding="utf-8") as f:
        for p in seed_candidates:
            if p["url"] in seed_urls:
                f.write(json.dumps({"url": p["url"], "text": html_to_text(p["html"])}) + "\n")
    with open(out / "labels.jsonl", "w", encoding="utf-8") as f:
        for p in pages:
            f.write(json.dumps({"url": p["url"], "site": p["site"], "is_math": p["is_math"],
                                "in_seed": p["url"] in seed_urls}) + "\n")
    manifest = {"pages": len(pages), "math": len(math), "nonmath": len(other), "shards": shards,
                "seed_site": seed_site, "seed_pages": len(seed_urls),
                "math_share": round(len(math) / len(pages), 4), "hosts": len({p["site"] for p in pages})}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log.info("real pages: %s", manifest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--nonmath", type=int, default=24000, help="non-math pages (0: only the crawled samples)")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--seed-site", default="mathoverflow.net")
    p.add_argument("--seed-pages", type=int, default=300)
    p.add_argument("--math-per-site", type=int, default=None, help="cap math pages per site (small test sets)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="Debian documentation packages cache")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    build(args.out, args.nonmath, args.shards, args.seed_site, args.seed_pages, args.math_per_site, args.cache)


if __name__ == "__main__":
    main()
