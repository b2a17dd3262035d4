"""Parquet shards of documents: the files the corpus steps hand each other, written atomically.

Intermediate shards (`corpus/extract/`, `corpus/pool/`) hold `id, url, domain, text, n_tokens`;
the outputs (`corpus/final/`, `corpus/web_text/`) hold CONTRACTS.md's `text, url, domain, score,
round` in `part-{i:05d}.parquet` files readable by `datasets.load_dataset("parquet", ...)`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.document import Document
from pipeline.io import atomic_path

DOC_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("url", pa.string()),
    ("domain", pa.string()),
    ("text", pa.string()),
    ("n_tokens", pa.int64()),
])
CORPUS_SCHEMA = pa.schema([
    ("text", pa.string()),
    ("url", pa.string()),
    ("domain", pa.string()),
    ("score", pa.float64()),
    ("round", pa.int64()),
])


def write_docs(path: str | Path, docs: Iterable[Document], batch_size: int = 2000) -> int:
    """Write documents as one Parquet shard (atomically); returns the number written."""
    n = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, DOC_SCHEMA, compression="zstd") as writer:
        batch: list[Document] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                writer.write_table(_docs_table(batch))
                n += len(batch)
                batch = []
        writer.write_table(_docs_table(batch))
        n += len(batch)
    return n


def _docs_table(docs: list[Document]) -> pa.Table:
    return pa.table({
        "id": [d.id for d in docs],
        "url": [d.url for d in docs],
        "domain": [d.metadata.get("domain", "") for d in docs],
        "text": [d.text for d in docs],
        "n_tokens": [d.n_tokens for d in docs],
    }, schema=DOC_SCHEMA)


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid, KeyError) as e:
        raise ValueError(f"{path}: cannot read document shard (columns {columns}): {e}") from e


def read_docs(path: str | Path) -> Iterator[Document]:
    """Stream the documents of a shard written by `write_docs`."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise ValueError(f"{path}: cannot read document shard: {e}") from e
    for batch in pf.iter_batches(batch_size=2000, columns=["id", "url", "domain", "text"]):
        for row in batch.to_pylist():
            yield Document(text=row["text"], id=row["id"], url=row["url"], metadata={"domain": row["domain"]})


def write_parts(out_dir: str | Path, table: pa.Table, part_docs: int) -> list[Path]:
    """Write `table` (CORPUS_SCHEMA) as `part-{i:05d}.parquet` files of at most `part_docs` rows,
    replacing `out_dir` atomically. An empty table still gives one (empty) part, so readers find a file."""
    table = table.select(CORPUS_SCHEMA.names).cast(CORPUS_SCHEMA)
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        starts = range(0, max(1, table.num_rows), max(1, part_docs))
        for i, start in enumerate(starts):
            pq.write_table(table.slice(start, part_docs), tmp / f"part-{i:05d}.parquet", compression="zstd")
    return sorted(out_dir.glob("part-*.parquet"))


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Materialise `dst` as the same content as `src` (hard link when possible, else a copy), atomically."""
    with atomic_path(dst) as tmp:
        try:
            tmp.hardlink_to(src)
        except OSError:
            shutil.copyfile(src, tmp)
