"""Domain discovery and URL-path annotation between mining rounds (paper §2.1).

"A domain (same base URL) with over 10% of its web pages collected in the first iteration is
math-related"; inside such a domain, URL paths are annotated as math (the paper did it by hand,
e.g. mathoverflow.net/questions/), and the uncollected pages under those paths are added to the
seed of the next round. The annotator is pluggable:

- `ScorePathAnnotator` (default, no human in the loop): groups a domain's pages by URL-path prefix
  (`path_depth` segments: /questions/123/title -> /questions/; a page directly under a folder
  belongs to that folder) and proposes the prefixes with at least `min_pages` pages whose median
  score is at least `min_score`. Below the keep threshold but clearly above "not math", the median
  catches a folder where the classifier is unsure page by page but right on the whole.
- `CollectedPathAnnotator`: the paper's domain rule one level down: a path prefix with more than
  `min_kept_fraction` of its pages (>= `min_pages`) collected by the round is math. Being a property of
  what the round kept, it finds a math site's question folder even where its page scores sit just
  below the threshold, and it never annotates a folder the classifier rejected as a whole.
- `RulesPathAnnotator`: a rules file of `<domain glob> <path glob>` lines (fnmatch, `#` comments),
  e.g. `mathoverflow.net /questions/*`, the paper's manual annotation written down once.
"""

from __future__ import annotations

import fnmatch
import statistics
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


def path_prefix(url: str, depth: int) -> str:
    """URL-path group of a page: its first `depth` segments (`/questions/`), or for a page less deep
    than that, the folder it sits in (`/` for /index.html)."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    head = segments[:depth] if len(segments) > depth else segments[:-1]
    return "/" + "".join(s + "/" for s in head)


@dataclass(frozen=True)
class DomainStats:
    domain: str
    pages: int
    kept: int

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.pages if self.pages else 0.0


def domain_stats(domains: Sequence[str], kept: Sequence[bool]) -> dict[str, DomainStats]:
    pages: dict[str, int] = defaultdict(int)
    n_kept: dict[str, int] = defaultdict(int)
    for d, k in zip(domains, kept):
        pages[d] += 1
        n_kept[d] += bool(k)
    return {d: DomainStats(d, pages[d], n_kept[d]) for d in sorted(pages)}


def math_domains(stats: dict[str, DomainStats], min_kept_fraction: float, min_pages: int) -> list[str]:
    """Domains with more than `min_kept_fraction` of their pages kept (and at least `min_pages` pages)."""
    return [d for d, s in stats.items() if s.pages >= min_pages and s.kept_fraction > min_kept_fraction]


class PathAnnotator(ABC):
    """Decides which URL paths of a math domain hold math pages."""

    @abstractmethod
    def annotate(self, domain: str, urls: Sequence[str], scores: Sequence[float],
                 kept: Sequence[bool] | None = None) -> list[str]:
        """Path annotations of `domain` (its pages' urls, scores and kept flags given), as printable patterns."""

    @abstractmethod
    def matches(self, url: str, annotations: Sequence[str]) -> bool:
        """Whether `url` lies under one of `annotations` (as returned by `annotate` for its domain)."""


class ScorePathAnnotator(PathAnnotator):
    def __init__(self, depth: int = 1, min_pages: int = 3, min_score: float = 0.3):
        self.depth, self.min_pages, self.min_score = depth, min_pages, min_score

    def annotate(self, domain: str, urls: Sequence[str], scores: Sequence[float],
                 kept: Sequence[bool] | None = None) -> list[str]:
        groups: dict[str, list[float]] = defaultdict(list)
        for url, score in zip(urls, scores):
            groups[path_prefix(url, self.depth)].append(float(score))
        return sorted(p for p, s in groups.items()
                      if len(s) >= self.min_pages and statistics.median(s) >= self.min_score)

    def matches(self, url: str, annotations: Sequence[str]) -> bool:
        return path_prefix(url, self.depth) in annotations


class CollectedPathAnnotator(PathAnnotator):
    def __init__(self, depth: int = 1, min_pages: int = 3, min_kept_fraction: float = 0.1):
        self.depth, self.min_pages, self.min_kept_fraction = depth, min_pages, min_kept_fraction

    def annotate(self, domain: str, urls: Sequence[str], scores: Sequence[float],
                 kept: Sequence[bool] | None = None) -> list[str]:
        if kept is None:
            raise ValueError("the collected-path annotator needs the round's kept flags")
        pages: dict[str, int] = defaultdict(int)
        n_kept: dict[str, int] = defaultdict(int)
        for url, k in zip(urls, kept):
            prefix = path_prefix(url, self.depth)
            pages[prefix] += 1
            n_kept[prefix] += bool(k)
        return sorted(p for p, n in pages.items() if n >= self.min_pages and n_kept[p] / n > self.min_kept_fraction)

    def matches(self, url: str, annotations: Sequence[str]) -> bool:
        return path_prefix(url, self.depth) in annotations


class RulesPathAnnotator(PathAnnotator):
    def __init__(self, rules: Sequence[tuple[str, str]]):
        self.rules = list(rules)

    @classmethod
    def from_file(cls, path: str | Path) -> RulesPathAnnotator:
        rules = []
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"{path}: cannot read the path-rules file: {e}") from e
        for lineno, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].startswith("/"):
                raise ValueError(f"{path}:{lineno}: expected `<domain glob> </path glob>`, got {line!r}")
            rules.append((parts[0].lower(), parts[1]))
        return cls(rules)

    def annotate(self, domain: str, urls: Sequence[str], scores: Sequence[float],
                 kept: Sequence[bool] | None = None) -> list[str]:
        return [path for dom, path in self.rules if fnmatch.fnmatchcase(domain, dom)]

    def matches(self, url: str, annotations: Sequence[str]) -> bool:
        path = urlsplit(url).path or "/"
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in annotations)


def build_annotator(cfg: dict) -> PathAnnotator:
    """The annotator of the config's `corpus.domains` section."""
    if cfg["annotator"] == "rules":
        if not cfg.get("rules_file"):
            raise ValueError("corpus.domains.annotator is `rules` but corpus.domains.rules_file is not set")
        return RulesPathAnnotator.from_file(cfg["rules_file"])
    if cfg["annotator"] == "collected":
        return CollectedPathAnnotator(cfg["path_depth"], cfg["path_min_pages"], cfg["path_min_kept_fraction"])
    return ScorePathAnnotator(cfg["path_depth"], cfg["path_min_pages"], cfg["path_min_score"])
