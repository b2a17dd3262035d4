"""Keep / drop-with-a-reason filters and the per-step stats they write (datatrove-style).

Every corpus step (extract, dedup, decontaminate, score/select per round) owns one `StepStats`:
documents and tokens in and out, documents and tokens dropped by reason, and the named errors
(malformed WARC files and records). Stats files are JSON, one per step per shard (or per round for
global steps); `corpus.funnel` builds the report's funnel table from them, so every number in the
funnel comes from a file a step wrote. Invariant checked by the tests: docs_in = docs_out + dropped.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.document import Document
from pipeline.io import write_json


@dataclass
class StepStats:
    """Counts of one step on one shard (or one round): the unit the funnel is built from."""

    step: str
    round: int = 0
    shard: int | None = None
    docs_in: int = 0
    docs_out: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    dropped_tokens: Counter = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter, repr=False)

    def seen(self, tokens: int = 0) -> None:
        self.docs_in += 1
        self.tokens_in += tokens

    def kept(self, tokens: int) -> None:
        self.docs_out += 1
        self.tokens_out += tokens

    def drop(self, reason: str, tokens: int = 0) -> None:
        self.dropped[reason] += 1
        self.dropped_tokens[reason] += tokens

    def error(self, reason: str, **where: Any) -> None:
        """Name a malformed file or record (file, offset, message) so a reader of the stats can find it."""
        self.errors.append({"reason": reason, **where})

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "round": self.round,
            "shard": self.shard,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_tokens": dict(sorted(self.dropped_tokens.items())),
            "errors": self.errors,
            "extra": self.extra,
            "seconds": round(time.perf_counter() - self.started, 3),
        }

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @staticmethod
    def load(path: str | Path) -> dict[str, Any]:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read a stats file: {e}") from e
        missing = {"step", "round", "docs_in", "docs_out", "dropped"} - set(data)
        if missing:
            raise ValueError(f"{path}: not a corpus stats file (missing {sorted(missing)})")
        return data


class Filter(ABC):
    """A keep/drop decision: `__call__` returns None to keep a document, else the drop reason.

    Subclasses set `name` (the reason used when they do not return a more specific one) and may
    put details of a drop into `doc.metadata["drop_detail"]` for the rejects file.
    """

    name = "filter"

    @abstractmethod
    def __call__(self, doc: Document) -> str | None: ...


class MinTokensFilter(Filter):
    """Drops pages whose extracted text is shorter than `min_tokens` words (empty extraction included)."""

    name = "too_short"

    def __init__(self, min_tokens: int):
        self.min_tokens = int(min_tokens)

    def __call__(self, doc: Document) -> str | None:
        if not doc.text.strip():
            return "empty_text"
        return self.name if doc.n_tokens < self.min_tokens else None


class IdSetFilter(Filter):
    """Drops documents whose id is in a given mapping id -> reason (e.g. the dedup decisions)."""

    name = "listed"

    def __init__(self, reasons: dict[str, str]):
        self.reasons = reasons

    def __call__(self, doc: Document) -> str | None:
        return self.reasons.get(doc.id)


def count_in(docs: Iterable[Document], stats: StepStats) -> Iterator[Document]:
    for doc in docs:
        stats.seen(doc.n_tokens)
        yield doc


def apply_filter(
    docs: Iterable[Document],
    filt: Filter,
    stats: StepStats,
    on_reject: Callable[[Document, str], None] | None = None,
) -> Iterator[Document]:
    """Yield the documents `filt` keeps; count the others in `stats` by reason (and hand them to `on_reject`)."""
    for doc in docs:
        reason = filt(doc)
        if reason is None:
            yield doc
            continue
        stats.drop(reason, doc.n_tokens)
        if on_reject is not None:
            on_reject(doc, reason)


def count_out(docs: Iterable[Document], stats: StepStats) -> Iterator[Document]:
    for doc in docs:
        stats.kept(doc.n_tokens)
        yield doc
