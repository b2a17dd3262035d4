"""Pretraining data mixture (paper §2.3): measured token shares match the weights within 2%, order is
fixed by the seed, positions resume exactly, bad records are skipped and counted."""

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.models import train_tokenizer
from sft.mixture import Mixture, SourceSpec, TextSource, local_files
from sft.pretrain import build_mixture, plan_steps

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples" / "text"
PAPER_WEIGHTS = {"math_corpus": 0.56, "algebraic_stack": 0.04, "arxiv": 0.10, "github": 0.20, "common_crawl": 0.10}


def _write_source(folder: Path, name: str, n_docs: int, shards: int = 2) -> Path:
    d = folder / name
    d.mkdir(parents=True)
    docs = [f"{name} document {i}: " + " ".join(f"w{(i * 7 + j) % 50}" for j in range(5 + (i * 13) % 40))
            for i in range(n_docs)]
    for s in range(shards):
        part = docs[s::shards]
        pq.write_table(pa.table({"text": part, "url": [f"u{i}" for i in range(len(part))]}),
                       d / f"part-{s:05d}.parquet")
    return d


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([f"w{i} document {i}" for i in range(60)] + list(PAPER_WEIGHTS), vocab_size=300)


def test_paper_mixture_token_shares_within_two_percent(tmp_path, tok):
    sources = [{"name": n, "weight": w, "path": str(_write_source(tmp_path, n, 40 + 10 * k))}
               for k, (n, w) in enumerate(PAPER_WEIGHTS.items())]
    mix = build_mixture(sources, tok, seq_len=64, document_masking=False, seed=0)
    counts = {n: 0 for n in PAPER_WEIGHTS}
    for _ in range(500):  # 32k tokens
        name, row = mix.next_item()
        counts[name] += len(row["input_ids"])
    total = sum(counts.values())
    for n, w in PAPER_WEIGHTS.items():
        assert abs(counts[n] / total - w) < 0.02, (n, counts[n] / total, w)
    # a row holds documents of its own source only
    for _ in range(50):
        name, row = mix.next_item()
        text = tok.decode(row["input_ids"])
        assert not [other for other in PAPER_WEIGHTS if other != name and f"{other} document" in text]


@pytest.mark.shared
def test_real_text_mixture_shares(tok):
    """Real math (StackMathQA) and non-math (Dolma CC) text, 80/20, by tokens."""
    math_file = SHARED / "math_stackmathqa100k_files32-127.jsonl"
    if not math_file.exists():
        pytest.skip(f"shared sample data not found at {SHARED}")
    sources = [{"name": "math", "weight": 0.8, "path": str(math_file), "text_field": "Q"},
               {"name": "cc", "weight": 0.2, "path": str(SHARED / "nonmath_dolma_cc_en_head-*.jsonl.gz")}]
    mix = build_mixture(sources, tok, seq_len=128, document_masking=False, seed=0)
    tokens = {"math": 0, "cc": 0}
    for _ in range(300):
        name, row = mix.next_item()
        tokens[name] += len(row["input_ids"])
    assert abs(tokens["math"] / sum(tokens.values()) - 0.8) < 0.02


def test_order_is_fixed_by_the_seed_and_resumes_exactly(tmp_path):
    src = _write_source(tmp_path, "a", 30, shards=3)
    spec = SourceSpec(name="a", weight=1.0, path=str(src))
    first = [TextSource(spec, seed=1).next_text() for _ in range(1)]
    run = TextSource(spec, seed=1)
    texts = [run.next_text() for _ in range(75)]  # 2.5 epochs
    assert run.epoch == 2
    assert sorted(texts[:30]) == sorted(texts[30:60]), "an epoch is a permutation of all documents"
    assert texts[:30] != texts[30:60], "each epoch is reshuffled"
    assert texts[0] == first[0]
    assert [TextSource(spec, seed=2).next_text() for _ in range(30)] != texts[:30]
    half = TextSource(spec, seed=1)
    for _ in range(41):
        half.next_text()
    resumed = TextSource(spec, seed=1)
    resumed.load_state_dict(half.state_dict())
    assert [resumed.next_text() for _ in range(34)] == texts[41:]


def test_mixture_state_resumes_the_interleaving():
    class Counter:
        def __init__(self):
            self.i = 0

        def next_item(self):
            self.i += 1
            return self.i

        def state_dict(self):
            return {"i": self.i}

        def load_state_dict(self, s):
            self.i = s["i"]

    def make():
        return Mixture({"x": Counter(), "y": Counter()}, {"x": 3, "y": 1})

    m = make()
    seq = [m.next_item() for _ in range(40)]
    assert m.shares() == {"x": 0.75, "y": 0.25}
    half = make()
    for _ in range(17):
        half.next_item()
    again = make()
    again.load_state_dict(half.state_dict())
    assert [again.next_item() for _ in range(23)] == seq[17:]


def test_bad_records_are_skipped_and_counted(tmp_path):
    f = tmp_path / "docs.jsonl.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(json.dumps({"text": "good one"}) + "\n")
        fh.write("{not json\n")
        fh.write(json.dumps({"text": ""}) + "\n")
        fh.write(json.dumps({"body": "wrong field"}) + "\n")
        fh.write(json.dumps({"text": "good two"}) + "\n")
    src = TextSource(SourceSpec(name="d", weight=1, path=str(f)), seed=0)
    got = {src.next_text() for _ in range(4)}
    assert got == {"good one", "good two"}
    assert src.skipped == 3  # counted once, not once per epoch


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .parquet"):
        local_files(tmp_path / "missing")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "p.parquet")
    with pytest.raises(ValueError, match="no column 'text'"):
        TextSource(SourceSpec(name="p", weight=1, path=str(tmp_path / "p.parquet"))).next_text()
    with pytest.raises(ValueError, match="exactly one of `path` or `hub`"):
        SourceSpec.from_config({"name": "x", "weight": 1})
    with pytest.raises(ValueError, match="weight must be > 0"):
        SourceSpec.from_config({"name": "x", "weight": 0, "path": "a"})
    with pytest.raises(ValueError, match="distinct names"):
        build_mixture([{"name": "a", "weight": 1, "path": str(tmp_path)}] * 2, None, seq_len=8,
                      document_masking=False, seed=0)


def test_plan_steps():
    assert plan_steps(1_000_000, 256, 16, 8, 1) == (245, 2)
    with pytest.raises(ValueError, match="multiple of micro_batch_size"):
        plan_steps(1000, 16, 10, 4, 1)


@pytest.mark.parametrize("streaming", [False, True])
def test_hub_sources_read_and_resume(monkeypatch, streaming):
    """Hub datasets (loaded, or streamed for corpora that do not fit on disk) through `datasets`."""
    import datasets

    rows = [{"content": f"def f{i}(): return {i}" if i % 10 else None} for i in range(40)]  # 4 without text

    def fake_load(path, name=None, split=None, streaming=False):
        assert (path, name, split) == ("bigcode/some-code", "python", "train")
        if streaming:
            return datasets.IterableDataset.from_generator(lambda: iter(rows))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    spec = SourceSpec.from_config({"name": "github", "weight": 0.2, "hub": "bigcode/some-code", "hub_config": "python",
                                   "text_field": "content", "streaming": streaming})
    src = TextSource(spec, seed=0)
    texts = [src.next_text() for _ in range(45)]  # past the end: a second epoch
    assert set(texts[:36]) == {r["content"] for r in rows if r["content"]}
    assert src.skipped == 4
    half = TextSource(spec, seed=0)
    for _ in range(20):
        half.next_text()
    again = TextSource(spec, seed=0)
    again.load_state_dict(half.state_dict())
    assert [again.next_text() for _ in range(10)] == texts[20:30]
