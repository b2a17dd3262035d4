"""The corpus stage end to end on a generated world, scored against the world's labels (issue targets:
precision and recall >= 0.9, >= 95% of near-duplicate clusters collapsed, 100% of contaminated pages
removed, rounds converge). Every step runs through its CLI `main` in this process, in the order
pipeline/rules/corpus.smk gives them, so the stage is tested without Snakemake."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from benchmarks import bench_corpus_real
from benchmarks.bench_corpus import measure

ROOT = Path(__file__).resolve().parents[1]


def run_corpus(config: Path, res: Path, n_shards: int, max_rounds: int) -> None:
    """The corpus.smk DAG, step by step, on the world's shards, seed and benchmark problems."""
    bench_corpus_real.run_corpus(config, res, [res / f"world/web/shard-{i:04d}.warc.gz" for i in range(n_shards)],
                                 max_rounds, world_seed=res / "world/web/seed.jsonl",
                                 world_problems=res / "world/problems")


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    """A generated world (a third of tiny's web, with its math share) mined with tiny's corpus settings."""
    from world import problems, web

    tmp = tmp_path_factory.mktemp("corpus_world")
    tiny = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    cfg = {"name": "corpus_test", "results_root": str(tmp), "seed": 0, "corpus": tiny["corpus"],
           "world": {"web": {**tiny["world"]["web"], "pages": 3000, "domains": 30, "shards": 2, "seed_pages": 35,
                             "contaminated_pages": 12},
                     "problems": {**tiny["world"]["problems"], "sft": 200, "rl": 50, "test_gsm8k": 60, "test_math": 60}}}
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    res = tmp / "corpus_test"
    problems.main(["--config", str(config), "--out-dir", str(res / "world/problems"), "--log-level", "WARNING"])
    web.main(["--config", str(config), "--test-gsm8k", str(res / "world/problems/test_gsm8k.jsonl"),
              "--test-math", str(res / "world/problems/test_math.jsonl"), "--out-dir", str(res / "world/web"),
              "--log-level", "WARNING"])
    run_corpus(config, res, n_shards=2, max_rounds=cfg["corpus"]["rounds"]["max_rounds"])
    return res, measure(res)


def test_precision_and_recall_of_the_mined_corpus(world_run):
    _, m = world_run
    print(f"\nworld (tiny settings): precision {m['precision']:.2f}, recall {m['recall']:.2f}, "
          f"converged at round {m['converged_at']}")
    assert m["final_urls_not_in_labels"] == 0
    assert m["precision"] >= 0.9, m
    assert m["recall"] >= 0.9, m


def test_near_duplicates_collapsed_and_contamination_removed(world_run):
    _, m = world_run
    assert m["near_dup_clusters"] > 0 and m["near_dup_collapsed_fraction"] >= 0.95, m
    assert m["contaminated_pages"] > 0 and m["contaminated_removed_fraction"] == 1.0, m


def test_rounds_converge_and_later_rounds_carry_the_converged_set(world_run):
    res, m = world_run
    assert m["converged_at"] is not None, m["rounds"]
    states = [json.loads((res / f"corpus/round{r['round']}/state.json").read_text()) for r in m["rounds"]]
    conv = m["converged_at"]
    assert states[conv - 1]["overlap_with_previous"] >= 0.98
    for s in states[conv:]:  # rounds after convergence are copies, not recomputations
        assert s["carried_over_from"] == conv and s["kept_docs"] == states[conv - 1]["kept_docs"]
        assert (res / f"corpus/round{s['round']}/kept.parquet").stat().st_ino == \
            (res / f"corpus/round{conv}/kept.parquet").stat().st_ino or \
            (res / f"corpus/round{s['round']}/kept.parquet").read_bytes() == \
            (res / f"corpus/round{conv}/kept.parquet").read_bytes()


def test_outputs_follow_the_contract_and_load_with_datasets(world_run):
    import datasets

    res, m = world_run
    for name in ("final", "web_text"):
        parts = sorted((res / "corpus" / name).glob("part-*.parquet"))
        assert parts and [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(len(parts))]
        assert pq.read_schema(parts[0]).names == ["text", "url", "domain", "score", "round"]
        ds = datasets.load_dataset("parquet", data_files=[str(p) for p in parts], split="train")
        assert len(ds) == (m["final_pages"] if name == "final" else m["web_text_pages"])
    final = datasets.load_dataset("parquet", data_files=str(res / "corpus/final/part-*.parquet"), split="train")
    assert all(0.0 <= s <= 1.0 for s in final["score"]) and set(final["round"]) <= set(range(1, 5))
    web = pq.read_table(res / "corpus/web_text/part-00000.parquet").to_pydict()
    assert all(s != s for s in web["score"]) and set(web["round"]) == {0}  # NaN scores, round 0


def test_funnel_is_built_from_the_stats_and_is_consistent(world_run):
    res, _ = world_run
    f = json.loads((res / "corpus/funnel.json").read_text())
    steps = {(s["step"], s["round"]): s for s in f["steps"]}
    ext, ded, dec = steps[("extract", 0)], steps[("dedup", 0)], steps[("decontaminate", 0)]
    assert ext["docs_out"] == ded["docs_in"] and ded["docs_out"] == dec["docs_in"]
    assert ded["dropped"].get("url_duplicate", 0) > 0 and ded["dropped"].get("near_duplicate", 0) > 0
    assert f["decontamination"]["removed"] == sum(dec["dropped"].values())
    assert steps[("select", 1)]["docs_in"] == dec["docs_out"]
    md = (res / "corpus/funnel.md").read_text()
    assert "| extract |" in md and "| decontaminate |" in md and "overlap with previous" in md
