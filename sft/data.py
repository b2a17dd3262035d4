"""SFT examples (DeepSeekMath §3.1): load, check, decontaminate, tokenize with a response-only loss mask.

Sources (config `sft.data`): the generated world's `world/problems/sft.jsonl` by default, or any local
JSONL/Parquet file or hub dataset with a field mapping (e.g. GSM8K train: ``fields: {question: question,
cot: answer}, cot_style: gsm8k``). Each record gives one example per configured format it has a
response for. A record without a question, or a response that breaks its format's template
(sft/formats.py), is skipped and counted by reason.

Decontamination reuses the corpus stage's matcher (`corpus.decontaminate.NgramMatcher`, paper §2.1):
an example whose question or response shares a 10-gram with an eval question (or contains a whole
short one) is dropped and counted per benchmark.

Tokenization renders the conversation with the tokenizer's own chat template, so the prompt is exactly
`grading.prompts.build_prompt(question, fmt, tokenizer)` - what eval and RL will ask - and the response is
what follows it, up to and including the template's EOS. Labels (loss mask): a token carries loss iff
its characters lie inside the response and outside every tool-output span (`formats.masked_spans`); the
prompt, tool results and anything the template adds after EOS carry none.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from tqdm.auto import tqdm

from corpus.decontaminate import NgramMatcher
from grading.benchmarks import load_benchmark
from grading.prompts import build_prompt, user_message
from pipeline.io import iter_jsonl
from sft.formats import FORMATS, check_response, gsm8k_solution_to_cot, masked_spans
from sft.packing import IGNORE, TokenizedExample

log = logging.getLogger(__name__)

WORLD_FIELDS = {"id": "problem_id", "question": "question", "cot": "cot", "pot": "pot", "tool": "tool"}


@dataclass(frozen=True)
class SFTSource:
    """One SFT source as written in config (`sft.data[]`)."""

    name: str
    path: str | None = None
    hub: str | None = None
    hub_configs: tuple = (None,)  # concatenated, e.g. MATH's seven subjects
    split: str = "train"
    fields: dict = field(default_factory=lambda: dict(WORLD_FIELDS))
    cot_style: str = "boxed"

    @classmethod
    def from_config(cls, entry: dict) -> SFTSource:
        entry = dict(entry)
        if bool(entry.get("path")) == bool(entry.get("hub")):
            raise ValueError(f"sft source {entry.get('name')!r}: give exactly one of `path` or `hub`")
        fields = {**WORLD_FIELDS, **(entry.pop("fields", None) or {})}
        entry["hub_configs"] = tuple(entry.get("hub_configs") or (None,))
        if entry.get("cot_style", "boxed") not in ("boxed", "gsm8k"):
            raise ValueError(f"sft source {entry['name']!r}: cot_style must be boxed or gsm8k")
        return cls(fields=fields, **entry)


@dataclass
class SFTExample:
    example_id: str
    source: str
    fmt: str
    question: str
    response: str


@dataclass
class DataStats:
    """What happened to every record and example; goes into run.json."""

    records: Counter = field(default_factory=Counter)  # per source
    skipped: Counter = field(default_factory=Counter)  # "source: reason"
    examples: Counter = field(default_factory=Counter)  # per format, after checks
    contaminated: Counter = field(default_factory=Counter)  # per benchmark
    too_long: int = 0
    skipped_examples: list[str] = field(default_factory=list)  # first few "location: reason"

    def skip(self, where: str, source: str, reason: str) -> None:
        self.skipped[f"{source}: {re.split(r'[:(]', reason)[0].strip()}"] += 1  # the kind, not the detail
        if len(self.skipped_examples) < 20:
            self.skipped_examples.append(f"{where}: {reason}")

    def as_dict(self) -> dict:
        return {"records": dict(self.records), "skipped": dict(self.skipped), "examples": dict(self.examples),
                "contaminated": dict(self.contaminated), "too_long": self.too_long,
                "skipped_examples": self.skipped_examples}


def _records(src: SFTSource):
    """Yield (location, record) from a local file or a hub dataset."""
    if src.hub:
        import datasets  # hub sources only: a 3.9 s import that local files never need

        for config in src.hub_configs:
            try:
                ds = datasets.load_dataset(src.hub, config, split=src.split)
            except Exception as e:  # noqa: BLE001 - offline, unknown id: name the source and why
                raise RuntimeError(f"sft source {src.name!r}: cannot load hub dataset {src.hub} "
                                   f"(config {config}, split {src.split}): {e}") from e
            for i, rec in enumerate(ds):
                yield f"hub:{src.hub}{'/' + config if config else ''}:{src.split}:row {i}", dict(rec)
        return
    path = Path(src.path)
    if not path.exists():
        raise FileNotFoundError(f"sft source {src.name!r}: {path} not found")
    if path.suffix == ".parquet":
        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for rec in batch.to_pylist():
                yield f"{path}:row {row}", rec
                row += 1
        return
    for where, rec, reason in iter_jsonl(path):  # a bad line comes as its reason, skipped and counted by the caller
        yield where, rec if rec is not None else reason


def load_examples(sources: list[SFTSource], formats: list[str], stats: DataStats | None = None
                  ) -> tuple[list[SFTExample], DataStats]:
    """Every valid example of `formats` from `sources` (bad records skipped and counted in stats)."""
    stats = stats or DataStats()
    bad_fmt = [f for f in formats if f not in FORMATS]
    if bad_fmt:
        raise ValueError(f"unknown SFT formats {bad_fmt}: expected {FORMATS}")
    out: list[SFTExample] = []
    for src in sources:
        n_before = len(out)
        for i, (where, rec) in enumerate(_records(src)):
            stats.records[src.name] += 1
            if isinstance(rec, str):
                stats.skip(where, src.name, rec)
                continue
            question = rec.get(src.fields["question"])
            if not isinstance(question, str) or not question.strip():
                stats.skip(where, src.name, f"no question in field {src.fields['question']!r}")
                continue
            rid = str(rec.get(src.fields["id"])) if src.fields.get("id") and rec.get(src.fields["id"]) is not None \
                else f"{src.name}-{i}"
            for fmt in formats:
                key = src.fields.get(fmt)
                response = rec.get(key) if key else None
                if response is None:
                    continue  # this source has no response of this format
                if fmt == "cot" and src.cot_style == "gsm8k" and isinstance(response, str):
                    try:
                        response = gsm8k_solution_to_cot(response)
                    except ValueError as e:
                        stats.skip(where, src.name, f"{fmt}: {e}")
                        continue
                reason = check_response(fmt, response)
                if reason:
                    stats.skip(where, src.name, f"{fmt}: {reason}")
                    continue
                out.append(SFTExample(f"{rid}/{fmt}", src.name, fmt, question.strip(), response.strip()))
                stats.examples[fmt] += 1
        if len(out) == n_before:
            raise ValueError(f"sft source {src.name!r} ({src.path or src.hub}): no usable example of formats "
                             f"{formats} in {stats.records[src.name]} records (first problem: "
                             f"{stats.skipped_examples[:1]}); check its `fields` mapping")
    log.info("SFT examples: %s from %s; skipped %s", dict(stats.examples), dict(stats.records), dict(stats.skipped))
    return out, stats


def build_matcher(benchmarks: list[dict], n: int, min_exact: int):
    """The corpus stage's n-gram matcher over the questions of `benchmarks` (the benchmark loader)."""
    texts = []
    for b in benchmarks:
        bench = load_benchmark(b["name"], data=b.get("path"))
        texts += [(b["name"], p.question) for p in bench.problems]
    matcher = NgramMatcher.from_texts(texts, n=n, min_exact=min_exact)
    log.info("decontamination index: %s", matcher.summary())
    return matcher


def decontaminate(examples: list[SFTExample], matcher, stats: DataStats) -> list[SFTExample]:
    """Drop examples whose question or response matches an eval question; counted per benchmark."""
    kept = []
    for ex in examples:
        match = matcher.find(ex.question + "\n" + ex.response)
        if match is None:
            kept.append(ex)
        else:
            stats.contaminated[match.benchmark] += 1
    if stats.contaminated:
        log.warning("decontamination dropped %d examples: %s", sum(stats.contaminated.values()),
                    dict(stats.contaminated))
    return kept


def render(tokenizer, question: str, fmt: str, response: str) -> tuple[str, int, int]:
    """(text, response_start, response_end) of one example in the tokenizer's chat template.

    text[:response_start] == build_prompt(question, fmt, tokenizer); text ends right after the
    template's end-of-turn EOS, which is inside the response span. Raises when the template does not
    render the prompt as a prefix of the conversation.
    """
    prompt = build_prompt(question, fmt, tokenizer)
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_message(question, fmt)}, {"role": "assistant", "content": response}],
        tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template does not render the generation prompt as a prefix of the "
                         "conversation; SFT cannot align prompt and response")
    eos = tokenizer.eos_token
    end = full.find(eos, len(prompt) + len(response)) if eos else -1
    if end < 0:
        raise ValueError("the chat template does not close the assistant turn with the EOS token")
    return full[: end + len(eos)], len(prompt), end + len(eos)


def tokenize_example(tokenizer, ex: SFTExample) -> TokenizedExample:
    """input_ids of the rendered example; labels = input_ids on response tokens, IGNORE elsewhere."""
    text, start, end = render(tokenizer, ex.question, ex.fmt, ex.response)
    r0 = text.index(ex.response, start)  # the response inside the assistant turn
    masked = [(r0 + a, r0 + b) for a, b in masked_spans(ex.fmt, ex.response)]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    labels = []
    for tid, (a, b) in zip(ids, enc["offset_mapping"]):
        carries = a >= start and b <= end and not any(a < me and b > ms for ms, me in masked)
        labels.append(tid if carries else IGNORE)
    return TokenizedExample(list(ids), labels)


def tokenize_all(tokenizer, examples: list[SFTExample], max_len: int, stats: DataStats) -> list[TokenizedExample]:
    """Tokenize every example; longer than `max_len` tokens -> skipped and counted (`too_long`)."""
    out = []
    for ex in tqdm(examples, desc="tokenize SFT", mininterval=5, disable=len(examples) < 5000):
        t = tokenize_example(tokenizer, ex)
        if len(t) > max_len:
            stats.too_long += 1
            continue
        out.append(t)
    if stats.too_long:
        log.warning("skipped %d examples longer than max_len=%d tokens", stats.too_long, max_len)
    if not out:
        raise ValueError(f"no SFT example fits in max_len={max_len} tokens")
    return out


def prepare(cfg: dict, tokenizer) -> tuple[list[TokenizedExample], DataStats]:
    """Config `sft:` -> tokenized, decontaminated examples and their stats."""
    scfg = cfg["sft"]
    sources = [SFTSource.from_config(e) for e in scfg["data"]]
    examples, stats = load_examples(sources, scfg["formats"])
    dcfg = scfg["decontaminate"]
    if dcfg["enabled"] and dcfg["benchmarks"]:
        matcher = build_matcher(dcfg["benchmarks"], dcfg["n"], dcfg["min_exact"])
        examples = decontaminate(examples, matcher, stats)
    return tokenize_all(tokenizer, examples, scfg["max_len"], stats), stats
