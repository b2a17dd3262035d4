"""The corpus stage's inputs besides the web: the positive seed, the benchmark texts, and Common
Crawl files (paper §2.1: OpenWebMath seed, Common Crawl, GSM8K/MATH/CMATH/AGIEval decontamination).

Each input is materialised by its own rule, so network access (a hub dataset, data.commoncrawl.org)
happens only inside that job, never while Snakemake builds the DAG:

    python -m corpus.sources --config C seed --output corpus/seed.parquet [--world-seed PATH]
    python -m corpus.sources --config C benchmarks --output corpus/benchmarks.jsonl [--world-dir DIR]
    python -m corpus.sources --config C cc-listing --output corpus/download/warc.paths.gz
    python -m corpus.sources --config C cc-file --listing L --index I --output corpus/download/shard-I.warc.gz

Records without the configured text field are skipped and counted (and logged with file and line).
"""

from __future__ import annotations

import gzip
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.decontaminate import clean_benchmark_text
from pipeline.io import atomic_path, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

WORLD_BENCHMARKS = (
    ("world_gsm8k", "test_gsm8k.jsonl", ("question", "answer")),
    ("world_math", "test_math.jsonl", ("problem", "solution")),
)


class SkipCounter:
    """Counts records skipped while reading an input, by reason, with the first few named."""

    def __init__(self):
        self.skipped: dict[str, int] = {}
        self.examples: list[str] = []

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(f"{where}: {reason}")
        log.warning("skipped %s: %s", where, reason)


def read_records(path: str | Path, skips: SkipCounter) -> Iterator[dict]:
    """Records of a JSONL, JSONL.gz or Parquet file; a line that is not a JSON object is skipped and counted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: input file not found")
    if path.suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
        return
    yield from read_jsonl(path, strict=False, on_skip=skips.skip)


def read_hub(hub: str, configs: list[str | None], split: str) -> Iterator[dict]:
    """Stream a Hugging Face dataset, its configs one after the other (MATH is split by subject).
    Used only inside the seed/benchmark rules; needs a network or a filled cache."""
    import datasets

    for config in configs or [None]:
        yield from datasets.load_dataset(hub, config, split=split, streaming=True)


def _records(spec: dict, skips: SkipCounter) -> tuple[Iterator[dict], str]:
    """Records of a `data` (local file) or `hub` spec, and a name for messages."""
    if spec.get("data"):
        return read_records(spec["data"], skips), str(spec["data"])
    if spec.get("hub"):
        return read_hub(spec["hub"], spec.get("hub_configs") or [None], spec.get("split", "train")), spec["hub"]
    raise ValueError(f"input spec {spec}: give `data` (a local file) or `hub` (a dataset id)")


def build_seed(spec: dict, output: str | Path) -> dict:
    """Write the seed pages (url, text) to Parquet; returns counts."""
    skips = SkipCounter()
    records, where = _records(spec, skips)
    urls, texts = [], []
    for i, rec in enumerate(records):
        text = rec.get(spec["text_field"])
        if not isinstance(text, str) or not text.strip():
            skips.skip(f"no text in field {spec['text_field']!r}", f"{where} record {i}")
            continue
        urls.append(str(rec.get(spec["url_field"]) or ""))
        texts.append(text)
        if len(texts) >= spec["max_docs"]:
            break
    if not texts:
        raise ValueError(f"{where}: no seed page with a {spec['text_field']!r} field")
    with atomic_path(output) as tmp:
        pq.write_table(pa.table({"url": urls, "text": texts}), tmp)
    return {"source": where, "docs": len(texts), "skipped": skips.skipped, "skipped_examples": skips.examples}


def build_benchmarks(specs: list[dict], output: str | Path) -> dict:
    """Write every benchmark text as `{benchmark, text}` lines; returns counts per benchmark."""
    rows, report = [], {}
    for spec in specs:
        skips = SkipCounter()
        records, where = _records({"split": "test", **spec}, skips)
        n_records = n_texts = 0
        for i, rec in enumerate(records):
            n_records += 1
            for field in spec["fields"]:
                text = rec.get(field)
                if not isinstance(text, str) or not text.strip():
                    skips.skip(f"no text in field {field!r}", f"{where} record {i}")
                    continue
                rows.append({"benchmark": spec["name"], "text": clean_benchmark_text(text)})
                n_texts += 1
        if n_texts == 0:
            raise ValueError(f"{where}: benchmark {spec['name']} has no text in fields {spec['fields']}")
        report[spec["name"]] = {"source": where, "records": n_records, "texts": n_texts, "skipped": skips.skipped}
    write_jsonl(output, rows)
    return report


def benchmark_specs(cfg: dict, world_dir: str | Path | None) -> list[dict]:
    """The configured benchmarks, or the world's test files when none are configured and the pages
    are the world's. Real pages (corpus.source files/commoncrawl) with no benchmark would be
    decontaminated against the generated test sets, i.e. not at all: that is an error."""
    if cfg["corpus"]["benchmarks"]:
        return cfg["corpus"]["benchmarks"]
    source = cfg["corpus"].get("source", "world")
    if source != "world":
        raise ValueError(f"corpus.benchmarks is empty but corpus.source is {source!r}: real pages must be "
                         "decontaminated against real benchmarks (e.g. GSM8K and MATH test sets); list them in "
                         "corpus.benchmarks (the world's test sets are the default only for source=world)")
    if world_dir is None:
        raise ValueError("corpus.benchmarks is empty and no --world-dir was given")
    return [{"name": name, "data": str(Path(world_dir) / fname), "fields": list(fields)}
            for name, fname, fields in WORLD_BENCHMARKS]


def cc_listing_url(base_url: str, crawl: str, kind: str) -> str:
    return f"{base_url.rstrip('/')}/crawl-data/{crawl}/{kind}.paths.gz"


def listing_entry(listing: str | Path, index: int) -> str:
    """The `index`-th path of a Common Crawl `*.paths.gz` listing."""
    with gzip.open(listing, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == index:
                return line.strip()
    raise ValueError(f"{listing}: has fewer than {index + 1} entries (corpus.commoncrawl.num_files too large)")


def download(url: str, output: str | Path, timeout: float, retries: int) -> int:
    """Download `url` to `output` atomically, retrying with exponential backoff; returns bytes written."""
    attempt = 0
    while True:
        try:
            with atomic_path(output) as tmp, urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
                n = 0
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    n += len(chunk)
            log.info("downloaded %s (%d bytes)", url, n)
            return n
        except (urllib.error.URLError, OSError) as e:
            if attempt >= retries:
                raise RuntimeError(f"download of {url} failed after {attempt + 1} attempts: {e}") from e
            wait = 2**attempt
            log.warning("download of %s failed (%s); retrying in %ds", url, e, wait)
            time.sleep(wait)
            attempt += 1


def main(argv: list[str] | None = None) -> None:
    from corpus.cli import parser, setup

    p = parser("Materialise the corpus stage's inputs: seed, benchmark texts, Common Crawl files.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--world-seed", help="the world's seed.jsonl (used when corpus.seed has no data/hub)")
    b = sub.add_parser("benchmarks")
    b.add_argument("--world-dir", help="the world's problems/ folder (used when corpus.benchmarks is empty)")
    sub.add_parser("cc-listing")
    f = sub.add_parser("cc-file")
    f.add_argument("--listing", required=True)
    f.add_argument("--index", type=int, required=True)
    for q in (s, b, sub.choices["cc-listing"], f):
        q.add_argument("--output", required=True)
    for q in (s, b):
        q.add_argument("--report", help="JSON report of what was read and skipped")
    args = p.parse_args(argv)
    cfg = setup(args)
    ccfg = cfg["corpus"]
    cc = ccfg["commoncrawl"]
    if args.command == "seed":
        spec = dict(ccfg["seed"])
        if not spec["data"] and not spec["hub"]:
            if not args.world_seed:
                raise SystemExit("corpus.seed has neither `data` nor `hub` and no --world-seed was given")
            spec["data"] = args.world_seed
        report = build_seed(spec, args.output)
    elif args.command == "benchmarks":
        report = build_benchmarks(benchmark_specs(cfg, args.world_dir), args.output)
    elif args.command == "cc-listing":
        download(cc_listing_url(cc["base_url"], cc["crawl"], cc["kind"]), args.output, cc["timeout_s"], cc["retries"])
        return
    else:
        entry = listing_entry(args.listing, args.index)
        download(f"{cc['base_url'].rstrip('/')}/{entry}", args.output, cc["timeout_s"], cc["retries"])
        return
    log.info("%s: %s", args.command, report)
    if args.report:
        write_json(args.report, report)


if __name__ == "__main__":
    main()
