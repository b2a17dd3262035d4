"""Weighted data mixtures for continued pretraining (DeepSeekMath §2.3/§3.1: 56% DeepSeekMath Corpus,
4% AlgebraStack, 10% arXiv, 20% GitHub code, 10% Common Crawl text).

Two pieces, both with a checkpointable position so a resumed run sees exactly the data an
uninterrupted one would have seen:

- `TextSource`: the documents of one source, endlessly, in an order fixed by the seed. A source is
  local (a folder, file or glob of Parquet / JSONL(.gz) shards) or a Hugging Face hub dataset (loaded,
  or streamed for corpora that do not fit on disk). Local shards are read one at a time, files and rows
  in a seeded permutation per epoch, so memory is bounded by one shard. A record whose text field is
  missing or empty is skipped and counted (`skipped`), never silently dropped.
- `Mixture`: interleaves items (here: packed rows of equal length, so a row share is a token share) from
  several streams by weight. The choice is deterministic and exact, as in Megatron-LM's blended datasets:
  item n goes to the stream with the largest deficit `w_i * (n + 1) - count_i`, so after any n items every
  stream is within one item of its target share, and the state is just the per-stream counts.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipeline.io import read_jsonl

log = logging.getLogger(__name__)

_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz")
HUB_SHARD_ROWS = 100_000  # a loaded hub dataset is read in virtual shards of this many rows


@dataclass(frozen=True)
class SourceSpec:
    """One pretraining source as written in config (`pretrain.variants.<v>.sources[]`)."""

    name: str
    weight: float
    path: str | None = None  # local folder / file / glob
    hub: str | None = None  # hub dataset id, e.g. EleutherAI/proof-pile-2
    hub_config: str | None = None
    split: str = "train"
    text_field: str = "text"
    streaming: bool = False  # hub only: stream instead of downloading the whole split

    @classmethod
    def from_config(cls, entry: dict) -> SourceSpec:
        if not isinstance(entry, dict):
            raise ValueError(f"source {entry!r}: expected a mapping with name, weight and path or hub")
        known = set(cls.__dataclass_fields__)
        unknown = set(entry) - known
        if unknown:
            raise ValueError(f"source {entry.get('name', entry)!r}: unknown keys {sorted(unknown)}")
        if bool(entry.get("path")) == bool(entry.get("hub")):
            raise ValueError(f"source {entry.get('name')!r}: give exactly one of `path` or `hub`")
        if float(entry.get("weight", 0)) <= 0:
            raise ValueError(f"source {entry.get('name')!r}: weight must be > 0")
        return cls(**entry)


def local_files(path: str | os.PathLike) -> list[Path]:
    """The data files of a local source: a file, a folder's *.parquet/*.jsonl(.gz), or a glob; sorted."""
    p = Path(path)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file() and f.name.endswith(_SUFFIXES)]
    else:
        files = [Path(f) for f in glob.glob(str(path), recursive=True) if f.endswith(_SUFFIXES)]
    files = sorted(f for f in files if not f.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"data source {path}: no .parquet/.jsonl/.jsonl.gz files found")
    return files


def read_texts(path: Path, field: str) -> tuple[list[str], list[str]]:
    """All texts of one shard and, for each record without a usable text, 'file:row: reason'."""
    texts: list[str] = []
    bad: list[str] = []
    if path.name.endswith(".parquet"):
        pf = pq.ParquetFile(path)
        if field not in pf.schema_arrow.names:
            raise ValueError(f"{path}: no column {field!r} (columns: {pf.schema_arrow.names})")
        values = pf.read(columns=[field]).column(field).to_pylist()
        rows = [(f"{path}:row {i}", v) for i, v in enumerate(values)]
    else:
        rows = [(where, rec.get(field)) for where, rec in read_jsonl(
            path, strict=False, on_skip=lambda reason, where: bad.append(f"{where}: {reason}"), with_location=True)]
    for where, v in rows:
        if isinstance(v, str) and v.strip():
            texts.append(v)
        else:
            bad.append(f"{where}: field {field!r} missing or empty")
    return texts, bad


class TextSource:
    """The documents of one source, endlessly, in a seeded order; `state_dict()` is its exact position."""

    def __init__(self, spec: SourceSpec, seed: int = 0):
        self.spec, self.seed = spec, int(seed)
        self.epoch, self.file_pos, self.row_pos = 0, 0, 0  # position: next document to return
        self.skipped = 0
        self._counted: set[int] = set()  # shards whose bad records are already in `skipped`
        self._stream: Any = None  # hub streaming: the IterableDataset and its iterator
        self._pending_state: dict | None = None  # hub streaming: position to restore on first read
        self._rows: list[str] | None = None
        self._rows_key: tuple[int, int] | None = None
        if spec.path:
            self.files = local_files(spec.path)
            self._dataset = None
        elif spec.streaming:
            self.files = []
            self._dataset = None
        else:
            self.files = []
            self._dataset = _load_hub(spec, streaming=False)

    # -- order -------------------------------------------------------------------------------------
    def _num_files(self) -> int:
        if self.files:
            return len(self.files)
        return max(1, -(-self._dataset.num_rows // HUB_SHARD_ROWS))

    def _file_order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(self._num_files())

    def _load_rows(self) -> list[str]:
        """Texts of the current file, permuted by (seed, epoch, file); cached while we read it."""
        key = (self.epoch, self.file_pos)
        if self._rows_key != key:
            fidx = int(self._file_order()[self.file_pos])
            if self.files:
                texts, bad = read_texts(self.files[fidx], self.spec.text_field)
            else:
                texts, bad = self._hub_texts(fidx)
            if bad and fidx not in self._counted:
                self.skipped += len(bad)
                log.warning("%s: skipped %d records without text (first: %s)", self.spec.name, len(bad), bad[0])
            self._counted.add(fidx)
            order = np.random.default_rng([self.seed, self.epoch, fidx, 1]).permutation(len(texts))
            self._rows = [texts[i] for i in order]
            self._rows_key = key
        return self._rows  # type: ignore[return-value]

    def _hub_texts(self, shard: int) -> tuple[list[str], list[str]]:
        """A virtual shard of a loaded hub dataset: HUB_SHARD_ROWS consecutive rows."""
        start = shard * HUB_SHARD_ROWS
        col = self._dataset[start:start + HUB_SHARD_ROWS][self.spec.text_field]
        texts = [t for t in col if isinstance(t, str) and t.strip()]
        bad = [f"hub:{self.spec.hub}:row {start + i}: field {self.spec.text_field!r} missing or empty"
               for i, t in enumerate(col) if not (isinstance(t, str) and t.strip())]
        return texts, bad

    # -- iteration ---------------------------------------------------------------------------------
    def next_text(self) -> str:
        if self.spec.hub and self.spec.streaming:
            return self._next_streamed()
        empty_files = 0
        while True:
            rows = self._load_rows()
            if self.row_pos < len(rows):
                text = rows[self.row_pos]
                self.row_pos += 1
                return text
            empty_files = empty_files + 1 if not rows else 0
            if empty_files > self._num_files():
                raise ValueError(f"data source {self.spec.name!r}: no usable text in any file")
            self.row_pos = 0
            self.file_pos += 1
            if self.file_pos >= self._num_files():
                self.file_pos = 0
                self.epoch += 1
                log.info("source %s: starting epoch %d", self.spec.name, self.epoch)

    def _next_streamed(self) -> str:
        if self._stream is None:
            ds = _load_hub(self.spec, streaming=True)
            if self._pending_state is not None:
                ds.load_state_dict(self._pending_state)
            self._stream = (ds, iter(ds))
        ds, it = self._stream
        for _ in range(1000):
            try:
                rec = next(it)
            except StopIteration:
                self.epoch += 1
                ds.set_epoch(self.epoch)
                it = iter(ds)
                self._stream = (ds, it)
                continue
            text = rec.get(self.spec.text_field)
            if isinstance(text, str) and text.strip():
                return text
            if self.epoch == 0:  # count each bad record once
                self.skipped += 1
        raise ValueError(f"data source {self.spec.name!r}: 1000 records in a row without text field "
                         f"{self.spec.text_field!r}")

    def __iter__(self) -> Iterator[str]:
        while True:
            yield self.next_text()

    def state_dict(self) -> dict:
        state = {"epoch": self.epoch, "file_pos": self.file_pos, "row_pos": self.row_pos,
                 "skipped": self.skipped, "counted": sorted(self._counted)}
        if self.spec.hub and self.spec.streaming:
            state["stream"] = self._stream[0].state_dict() if self._stream else self._pending_state
        return state

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.file_pos, self.row_pos = int(state["epoch"]), int(state["file_pos"]), int(state["row_pos"])
        self.skipped = int(state.get("skipped", 0))
        self._counted = set(state.get("counted", []))
        self._rows_key = None
        if self.spec.hub and self.spec.streaming:
            self._pending_state, self._stream = state.get("stream"), None


def _load_hub(spec: SourceSpec, streaming: bool):
    import datasets  # hub sources only: a 3.9 s import that local files never need

    try:
        ds = datasets.load_dataset(spec.hub, spec.hub_config, split=spec.split, streaming=streaming)
    except Exception as e:  # noqa: BLE001 - offline, unknown id: say which source and why
        raise RuntimeError(f"source {spec.name!r}: cannot load hub dataset {spec.hub} "
                           f"(config {spec.hub_config}, split {spec.split}): {e}") from e
    if spec.text_field not in (ds.column_names or [spec.text_field]):
        raise ValueError(f"source {spec.name!r}: hub dataset {spec.hub} has no field {spec.text_field!r} "
                         f"(fields: {ds.column_names})")
    return ds


class Mixture:
    """Interleave items from `streams` (objects with `next_item()` and state) in proportion to `weights`.

    Deterministic: item n comes from the stream with the largest deficit w_i*(n+1) - count_i (ties: the
    earlier stream). Weights are normalised to sum to 1.
    """

    def __init__(self, streams: dict[str, Any], weights: dict[str, float]):
        if set(streams) != set(weights):
            raise ValueError(f"mixture: streams {sorted(streams)} and weights {sorted(weights)} differ")
        total = float(sum(weights.values()))
        if total <= 0 or any(w <= 0 for w in weights.values()):
            raise ValueError(f"mixture weights must be positive: {weights}")
        self.names = list(streams)
        self.streams = streams
        self.weights = {k: float(weights[k]) / total for k in self.names}
        self.counts = {k: 0 for k in self.names}

    def next_source(self) -> str:
        n = sum(self.counts.values())
        return max(self.names, key=lambda k: (self.weights[k] * (n + 1) - self.counts[k], -self.names.index(k)))

    def next_item(self) -> tuple[str, Any]:
        name = self.next_source()
        item = self.streams[name].next_item()
        self.counts[name] += 1
        return name, item

    def shares(self) -> dict[str, float]:
        n = max(1, sum(self.counts.values()))
        return {k: c / n for k, c in self.counts.items()}

    def state_dict(self) -> dict:
        return {"counts": dict(self.counts), "streams": {k: s.state_dict() for k, s in self.streams.items()}}

    def load_state_dict(self, state: dict) -> None:
        if set(state["counts"]) != set(self.names):
            raise ValueError(f"mixture checkpoint has sources {sorted(state['counts'])}, config has {self.names}")
        self.counts = {k: int(v) for k, v in state["counts"].items()}
        for k, s in self.streams.items():
            s.load_state_dict(state["streams"][k])
