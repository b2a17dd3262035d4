"""The one record type of the corpus stage (DeepSeekMath §2.1 mining loop, datatrove's `Document`).

A `Document` flows through generator blocks: WARC reader -> HTML extractor -> filters -> writers.
`text` holds the page's HTML straight from the reader and its extracted plain text after
`corpus.extract`; `metadata` carries what later steps need (domain, shard, WARC offset, score).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corpus.text import count_tokens


@dataclass(slots=True)
class Document:
    """One web page: `id` is unique and sortable within a run (`s{shard:04d}-{index:07d}`)."""

    text: str
    id: str
    url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        """Whitespace-separated words: the token unit of every stats file and the funnel."""
        return count_tokens(self.text)


def doc_id(shard: int, index: int) -> str:
    """Deterministic, lexicographically ordered id: crawl order = sort order."""
    return f"s{shard:04d}-{index:07d}"
