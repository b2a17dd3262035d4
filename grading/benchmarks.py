"""Benchmark loaders: GSM8K, MATH, MATH500, the world's test sets, any local file or hub dataset.

DeepSeekMath evaluates on GSM8K and MATH (paper §3.2, §4.3). A benchmark is a list of `Problem`s with a
gold final answer; the schema of a file is detected from its keys or given explicitly:

| schema    | fields                                              | gold answer                       |
|-----------|-----------------------------------------------------|-----------------------------------|
| `gsm8k`   | `question`, `answer`                                | text after the last `####`, thousands commas removed |
| `math`    | `problem`, `solution`, `level` ("Level 3"), `type`  | content of the last `\\boxed{}` in `solution` |
| `math500` | `problem`, `answer`, `subject`, `level`, `unique_id` | `answer`                          |
| `problem` | `problem_id`, `question`, `answer`, `subject`, `level` (the world's problem records) | `answer` |
| `fields`  | any: a `FieldMap` names the question/answer/id/subject/level keys | per `FieldMap.answer_format` |

Local files are JSONL (optionally .gz) or Parquet. A record that does not fit its schema is skipped and
counted; `Benchmark.skipped` keeps "file:line: reason" for each. Hub datasets load through
`datasets.load_dataset` (needs a network); the names `gsm8k`, `math`, `math500` have known hub ids.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from grading.answer_extraction import boxed_answer
from pipeline.io import iter_jsonl

log = logging.getLogger(__name__)

SCHEMAS = ("gsm8k", "math", "math500", "problem", "fields")


@dataclass
class Problem:
    problem_id: str
    question: str
    answer: str  # gold final answer (LaTeX or plain text), gradeable by grading.grader
    subject: str | None = None
    level: int | None = None


@dataclass
class Benchmark:
    name: str
    source: str  # file path or "hub:<id>"
    schema: str
    problems: list[Problem]
    num_records: int  # records read, including skipped ones
    skipped: list[str] = field(default_factory=list)  # "location: reason" per skipped record

    def summary(self) -> dict:
        """What goes into metrics.json about the data."""
        return {"name": self.name, "source": self.source, "schema": self.schema,
                "num_records": self.num_records, "num_problems": len(self.problems),
                "num_skipped": len(self.skipped), "skipped_examples": self.skipped[:20]}


@dataclass(frozen=True)
class FieldMap:
    """Which keys of an arbitrary record hold what (schema `fields`).

    answer_format: `plain` (the field is the final answer), `gsm8k` (after the last `####`) or
    `boxed` (the last `\\boxed{}` in the field).
    """

    question: str
    answer: str
    id: str | None = None
    subject: str | None = None
    level: str | None = None
    answer_format: str = "plain"

    @classmethod
    def parse(cls, spec: str | dict) -> FieldMap:
        """From `question=q,answer=a,answer_format=boxed` or a dict with the same keys."""
        if isinstance(spec, str):
            try:
                spec = dict(part.split("=", 1) for part in spec.split(",") if part.strip())
            except ValueError as e:
                raise ValueError(f"field map {spec!r}: expected key=value pairs separated by commas") from e
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"field map: unknown keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        if "question" not in spec or "answer" not in spec:
            raise ValueError("field map: needs at least question=<key> and answer=<key>")
        fm = cls(**{k: str(v).strip() for k, v in spec.items()})
        if fm.answer_format not in ("plain", "gsm8k", "boxed"):
            raise ValueError(f"field map: answer_format must be plain, gsm8k or boxed, got {fm.answer_format!r}")
        return fm


@dataclass(frozen=True)
class HubSpec:
    """A dataset on the Hugging Face hub; `configs` are concatenated (MATH is split by subject)."""

    path: str
    configs: tuple[str | None, ...] = (None,)
    split: str = "test"
    schema: str = "auto"


MATH_SUBJECT_CONFIGS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                        "number_theory", "prealgebra", "precalculus")
HUB_BENCHMARKS = {
    "gsm8k": HubSpec("openai/gsm8k", ("main",), "test", "gsm8k"),
    "math": HubSpec("EleutherAI/hendrycks_math", MATH_SUBJECT_CONFIGS, "test", "math"),
    "math500": HubSpec("HuggingFaceH4/MATH-500", (None,), "test", "math500"),
}


# ---------------------------------------------------------------------------------------------------
# Gold answers


def last_boxed(text: str) -> str | None:
    """The gold answer of a MATH-style solution: the content of its last `\\boxed{}` / `\\fbox{}`
    (`grading.answer_extraction.boxed_answer`, the project's one box parser); None if absent or unclosed."""
    return boxed_answer(text)


_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def gsm8k_gold(answer: str) -> str | None:
    """GSM8K's final answer: the text after the last `####`, with thousands separators removed."""
    if "####" not in answer:
        return None
    gold = answer.rsplit("####", 1)[1].strip()
    return gold.replace(",", "") if _THOUSANDS.match(gold) else gold


def parse_level(value) -> int | None:
    """`3`, `"3"`, `"Level 3"` -> 3; anything else (e.g. MATH's "Level ?") -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(?:Level\s*)?(\d+)\s*", str(value)) if value is not None else None
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------------
# Schemas: record -> Problem (raise ValueError with the reason when the record does not fit)


def _text(rec: dict, key: str) -> str:
    v = rec.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"field {key!r} missing or empty")
    return v


def _from_gsm8k(rec: dict, default_id: str) -> Problem:
    gold = gsm8k_gold(_text(rec, "answer"))
    if not gold:
        raise ValueError("'answer' has no final answer after '####'")
    return Problem(str(rec.get("id", default_id)), _text(rec, "question"), gold)


def _from_math(rec: dict, default_id: str) -> Problem:
    gold = last_boxed(_text(rec, "solution"))
    if not gold:
        raise ValueError("'solution' has no \\boxed{} answer")
    pid = rec.get("unique_id") or (f"math-{rec['idx']}" if "idx" in rec else default_id)
    return Problem(str(pid), _text(rec, "problem"), gold, rec.get("type") or rec.get("subject"),
                   parse_level(rec.get("level")))


def _from_math500(rec: dict, default_id: str) -> Problem:
    gold = rec.get("answer")
    if gold is None or not str(gold).strip():
        raise ValueError("field 'answer' missing or empty")
    return Problem(str(rec.get("unique_id") or default_id), _text(rec, "problem"), str(gold).strip(),
                   rec.get("subject") or rec.get("type"), parse_level(rec.get("level")))


def _from_problem(rec: dict, default_id: str) -> Problem:
    gold = rec.get("answer")
    if gold is None or not str(gold).strip():
        raise ValueError("field 'answer' missing or empty")
    return Problem(str(rec.get("problem_id") or default_id), _text(rec, "question"), str(gold).strip(),
                   rec.get("subject"), parse_level(rec.get("level")))


def _from_fields(fm: FieldMap) -> Callable[[dict, str], Problem]:
    def convert(rec: dict, default_id: str) -> Problem:
        raw = rec.get(fm.answer)
        if raw is None or not str(raw).strip():
            raise ValueError(f"field {fm.answer!r} missing or empty")
        raw = str(raw)
        gold = {"plain": raw.strip(), "gsm8k": gsm8k_gold(raw), "boxed": last_boxed(raw)}[fm.answer_format]
        if not gold:
            raise ValueError(f"field {fm.answer!r} has no {fm.answer_format} final answer")
        pid = str(rec[fm.id]) if fm.id and rec.get(fm.id) is not None else default_id
        return Problem(pid, _text(rec, fm.question), gold, rec.get(fm.subject) if fm.subject else None,
                       parse_level(rec.get(fm.level)) if fm.level else None)

    return convert


_CONVERTERS = {"gsm8k": _from_gsm8k, "math": _from_math, "math500": _from_math500, "problem": _from_problem}


def detect_schema(rec: dict) -> str:
    """Pick a schema from one record's keys (see the module table)."""
    keys = set(rec)
    if {"problem", "answer"} <= keys:
        return "math500"
    if {"problem", "solution"} <= keys:
        return "math"
    if {"question", "answer"} <= keys and ({"problem_id", "family"} & keys):
        return "problem"
    if {"question", "answer"} <= keys:
        return "gsm8k"
    raise ValueError(f"cannot detect the benchmark schema from keys {sorted(keys)}: expected "
                     "question/answer (GSM8K), problem/solution (MATH), problem/answer (MATH500), or give "
                     "a field map (--fields question=KEY,answer=KEY[,answer_format=plain|gsm8k|boxed])")


# ---------------------------------------------------------------------------------------------------
# Readers: yield (location, record-or-error)


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict | str]]:
    for where, rec, reason in iter_jsonl(path):  # a bad line comes as its reason, skipped and counted by the caller
        yield where, rec if rec is not None else reason


def _read_parquet(path: Path) -> Iterator[tuple[str, dict | str]]:
    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            yield f"{path}:row {row}", rec
            row += 1


def _read_hub(spec: HubSpec) -> Iterator[tuple[str, dict | str]]:
    import datasets  # hub datasets only: a 3.9 s import that local files never need

    for cfg in spec.configs:
        try:
            ds = datasets.load_dataset(spec.path, cfg, split=spec.split)
        except Exception as e:  # noqa: BLE001 - offline, unknown id, ... : say which dataset and why
            raise RuntimeError(f"cannot load hub dataset {spec.path} (config {cfg}, split {spec.split}): {e}. "
                               "Without a network, pass a local file with --data.") from e
        for i, rec in enumerate(ds):
            yield f"hub:{spec.path}{'/' + cfg if cfg else ''}:{spec.split}:row {i}", dict(rec)


def _read_file(path: Path) -> Iterator[tuple[str, dict | str]]:
    if not path.exists():
        raise FileNotFoundError(f"benchmark file not found: {path}")
    if path.suffix == ".parquet":
        return _read_parquet(path)
    if path.name.endswith((".jsonl", ".jsonl.gz", ".json")):
        return _read_jsonl(path)
    raise ValueError(f"{path}: unsupported benchmark file type (use .jsonl, .jsonl.gz or .parquet)")


# ---------------------------------------------------------------------------------------------------


def load_benchmark(name: str, *, data: str | Path | None = None, hub: HubSpec | None = None,
                   schema: str = "auto", fields: FieldMap | str | dict | None = None,
                   limit: int | None = None) -> Benchmark:
    """Load benchmark `name` from a local file (`data`), a hub dataset (`hub`), or the hub id known for
    `name` (gsm8k, math, math500). `schema` is detected from the first record when "auto"; a field map
    implies schema `fields`. `limit` keeps the first N problems. Raises when no problem could be read.
    """
    if fields is not None:
        schema, fields = "fields", fields if isinstance(fields, FieldMap) else FieldMap.parse(fields)
    if schema not in ("auto", *SCHEMAS):
        raise ValueError(f"unknown benchmark schema {schema!r}; known: auto, {', '.join(SCHEMAS)}")
    if schema == "fields" and fields is None:
        raise ValueError("schema 'fields' needs a field map")
    if data is not None:
        source, records = str(data), _read_file(Path(data))
    else:
        hub = hub or HUB_BENCHMARKS.get(name)
        if hub is None:
            raise ValueError(f"benchmark {name!r}: no --data file given and no known hub dataset "
                             f"(known: {', '.join(HUB_BENCHMARKS)})")
        source, records = f"hub:{hub.path}", _read_hub(hub)
        if schema == "auto":
            schema = hub.schema
    convert = _from_fields(fields) if schema == "fields" else _CONVERTERS.get(schema)

    problems: list[Problem] = []
    skipped: list[str] = []
    seen: set[str] = set()
    num_records = 0
    for loc, rec in records:
        num_records += 1
        if isinstance(rec, str):
            skipped.append(f"{loc}: {rec}")
            continue
        if convert is None:  # auto: the first record decides for the whole file
            schema = detect_schema(rec)
            convert = _CONVERTERS[schema]
        try:
            p = convert(rec, f"{name}-{num_records - 1:05d}")
        except ValueError as e:
            skipped.append(f"{loc}: {e}")
            continue
        if p.problem_id in seen:
            skipped.append(f"{loc}: duplicate problem_id {p.problem_id!r}")
            continue
        seen.add(p.problem_id)
        problems.append(p)
        if limit is not None and len(problems) >= limit:
            break
    if skipped:
        log.warning("%s: skipped %d of %d records (first: %s)", source, len(skipped), num_records, skipped[0])
    if not problems:
        detail = f"; first problem: {skipped[0]}" if skipped else ""
        raise ValueError(f"{source}: no usable problems in {num_records} records{detail}")
    log.info("loaded %s: %d problems from %s (schema %s)", name, len(problems), source, schema)
    return Benchmark(name, source, schema, problems, num_records, skipped)
