"""The dedup fan-out (corpus/dedup_shards.py: url -> band groups -> merge) drops exactly what the single
job (corpus.dedup) drops, on hand-made signatures, synthetic near-duplicates and the tiny world, and its
Snakemake plan fans the near-dedup out over corpus.dedup.band_groups jobs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from corpus import dedup, dedup_shards, extract
from corpus.dedup import MinHashDeduper, MinHashSettings
from corpus.dedup_shards import band_candidates, band_group_step, band_ranges, merge_step, run_pairs, url_step
from tests.test_corpus_workflow import config_section, dry_run

ROOT = Path(__file__).resolve().parents[1]


def test_band_ranges_split_the_bands_contiguously():
    assert band_ranges(16, 4) == [range(0, 4), range(4, 8), range(8, 12), range(12, 16)]
    assert band_ranges(20, 3) == [range(0, 7), range(7, 14), range(14, 20)]
    assert band_ranges(5, 1) == [range(0, 5)]
    for bad in (0, 17):
        with pytest.raises(ValueError, match="band_groups"):
            band_ranges(16, bad)


def test_run_pairs_are_all_pairs_inside_each_run():
    order = np.array([5, 3, 9, 1, 7, 4])  # runs [5, 3], [9, 1, 7]; 4 alone is not passed
    a, b = run_pairs(order, np.array([0, 2]), np.array([2, 3]))
    assert sorted(zip(a.tolist(), b.tolist())) == [(1, 7), (5, 3), (9, 1), (9, 7)]


def test_band_candidates_need_every_value_of_the_band_equal():
    keys = np.array([[1, 2], [1, 3], [1, 2], [7, 7], [1, 2], [7, 7]], dtype=np.uint32)
    rows = np.array([10, 11, 12, 13, 14, 15])
    codes = band_candidates(keys, rows)
    pairs = sorted(zip((codes // dedup_shards.N_MAX).tolist(), (codes % dedup_shards.N_MAX).tolist()))
    assert pairs == [(10, 12), (10, 14), (12, 14), (13, 15)]


def _write_shards(tmp: Path, shards: list[list[tuple[str, str, np.ndarray]]]) -> tuple[list[str], list[str]]:
    """Extract-like shards: (id, url, signature) rows -> parquet (id, url, n_tokens) + .npy signatures."""
    docs, sigs = [], []
    for k, rows in enumerate(shards):
        d, s = tmp / f"shard-{k:04d}.parquet", tmp / f"shard-{k:04d}.minhash.npy"
        pq.write_table(pa.table({"id": [r[0] for r in rows], "url": [r[1] for r in rows],
                                 "n_tokens": [10 + i for i in range(len(rows))]}), d)
        np.save(s, np.stack([r[2] for r in rows]).astype(np.uint32))
        docs.append(str(d))
        sigs.append(str(s))
    return docs, sigs


def _sharded(docs, sigs, cfg, seed=0):
    url_table, active, _ = url_step(docs, sigs, cfg, seed)
    bands, _ = MinHashSettings.from_config(cfg, seed).lsh_params()
    groups = [band_group_step(sigs, active, cfg, seed, g) for g in range(len(band_ranges(bands, cfg["band_groups"])))]
    out, stats = merge_step(docs, url_table, [edges for edges, _ in groups], cfg, seed)
    stats.extra["band_stats"] = [st for _, st in groups]
    return out, stats


HAND_CFG = {"url": True, "near": True, "ngram": 5, "num_perm": 8, "bands": 4, "rows": 2, "threshold": 0.5,
            "band_groups": 2}


def test_hand_made_signatures_chain_and_tie_break(tmp_path):
    """8 values, 4 bands of 2, threshold 0.5. a-b share bands 0-1 (4/8 equal: joined), b-c share bands 2-3
    (joined), a-c share nothing: one cluster {a, b, c} through the chain, kept = smallest id. d shares band
    0 with a but only 2/8 values: a candidate, not a duplicate. e is a's signature under d's URL: dropped
    as a URL duplicate of d, and it takes no part in near-dedup. f has no shingles (all max): never joined."""
    m = np.iinfo(np.uint32).max
    a = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    b = np.array([1, 2, 3, 4, 50, 60, 70, 80])
    c = np.array([11, 12, 13, 14, 50, 60, 70, 80])
    d = np.array([1, 2, 93, 94, 95, 96, 97, 98])
    e = a.copy()
    f = np.full(8, m)
    # ids out of order across shards: the kept member is the smallest id, not the first row
    shards = [[("s1-c", "http://x/c", c), ("s1-d", "http://x/d", d)],
              [("s0-b", "http://x/b", b), ("s2-e", "http://www.x/d/", e), ("s0-f", "http://x/f", f)],
              [("s0-a", "http://x/a", a), ("s3-f", "http://x/f2", f)]]
    docs, sigs = _write_shards(tmp_path, shards)
    want = {"s1-c": ("near_duplicate", "s0-a"), "s0-b": ("near_duplicate", "s0-a"),
            "s2-e": ("url_duplicate", "s1-d")}
    for groups in (1, 2, 4):
        out, stats = _sharded(docs, sigs, {**HAND_CFG, "band_groups": groups})
        got = {r["id"]: (r["reason"], r["duplicate_of"]) for r in out.to_pylist()}
        assert got == want, groups
        assert stats.docs_in == 7 and stats.docs_out == 4 and stats.extra["near_duplicate_clusters"] == 1
    single, _ = dedup.dedup_shards(docs, sigs, HAND_CFG, seed=0)
    assert single.equals(out)


def _near_duplicate_corpus(seed: int) -> list[list[tuple[str, str, str]]]:
    """4 shards of (id, url, text): originals, light edits (Jaccard ~0.9), chains of successive edits,
    heavy edits (distinct), edits around the threshold (LSH candidates
    that the Jaccard estimate rejects), exact copies, URL duplicates, empty pages; ids shuffled within shards."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    base = [" ".join(rng.choice(vocab) for _ in range(120)) for _ in range(60)]

    def edit(text: str, frac: float) -> str:
        words = text.split()
        for i in rng.sample(range(len(words)), int(frac * len(words))):
            words[i] = f"e{rng.randrange(10**6)}"
        return " ".join(words)

    texts = list(base)
    texts += [edit(base[i], 0.02) for i in range(0, 20)]
    chain = base[20]
    for _ in range(6):  # each step 4% of the words: neighbours similar, the ends not
        chain = edit(chain, 0.04)
        texts.append(chain)
    texts += [edit(base[i], 0.5) for i in range(30, 40)]
    texts += [edit(base[i], 0.04 + 0.005 * (i - 45)) for i in range(45, 60)]  # around the threshold
    texts += [base[i] for i in range(40, 45)]
    texts += ["", "!!!", ""]
    urls = [f"https://site{i % 7}.org/p{i}" for i in range(len(texts))]
    for i in range(5):  # same URL as an original, different text
        urls[-(i + 4)] = urls[i].replace("https://", "http://www.") + "/"
    rows = [(f"s{rng.randrange(4)}-{rng.randrange(10**6):07d}-{i}", urls[i], t) for i, t in enumerate(texts)]
    shards: list[list] = [[], [], [], []]
    for r in rows:
        shards[rng.randrange(4)].append(r)
    return shards


@pytest.mark.parametrize("seed", [1, 2])
def test_sharded_equals_single_job_on_synthetic_near_duplicates(seed, tmp_path):
    cfg = {"url": True, "near": True, "ngram": 5, "num_perm": 128, "bands": 20, "rows": 5, "threshold": 0.5,
           "band_groups": 1}
    settings = MinHashSettings.from_config(cfg, seed=seed)
    deduper = MinHashDeduper(settings)
    corpus = _near_duplicate_corpus(seed)
    docs, sigs = _write_shards(tmp_path, [[(i, u, s) for (i, u, _), s in
                                         zip(rows, deduper.signatures(t for _, _, t in rows))] for rows in corpus])
    single, single_stats = dedup.dedup_shards(docs, sigs, cfg, seed=seed)
    reasons = single.column("reason").to_pylist()
    assert reasons.count("near_duplicate") >= 20 and reasons.count("url_duplicate") >= 1
    for groups in (1, 3, 20):
        out, stats = _sharded(docs, sigs, {**cfg, "band_groups": groups}, seed=seed)
        assert out.equals(single), groups
        a, b = stats.to_dict(), single_stats.to_dict()
        for k in ("seconds",):
            a.pop(k), b.pop(k)
        bands = a["extra"].pop("band_stats")
        assert sum(st["candidates"] for st in bands) > sum(st["confirmed"] for st in bands)  # some rejected
        a["extra"].pop("band_groups")
        assert a == b


def test_url_step_names_a_mismatched_signature_file(tmp_path):
    m = np.arange(8)
    docs, sigs = _write_shards(tmp_path, [[("a", "http://a", m), ("b", "http://b", m)]])
    np.save(sigs[0], np.zeros((3, 8), np.uint32))
    with pytest.raises(ValueError, match="3 signatures for the 2 documents"):
        url_step(docs, sigs, HAND_CFG, 0)
    np.save(sigs[0], np.zeros((2, 8), np.int64))
    with pytest.raises(ValueError, match="expected \\(rows, 8\\) uint32"):
        url_step(docs, sigs, HAND_CFG, 0)


@pytest.fixture(scope="module")
def tiny_world_extract(tmp_path_factory):
    """The tiny config's world web (all of it), extracted per shard as corpus_extract does."""
    from world import problems, web

    tmp = tmp_path_factory.mktemp("dedup_world")
    tiny = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    cfg = {"name": "dedup_test", "results_root": str(tmp), "seed": 0, "corpus": tiny["corpus"], "world": tiny["world"]}
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    res = tmp / "dedup_test"
    problems.main(["--config", str(config), "--out-dir", str(res / "world/problems"), "--log-level", "WARNING"])
    web.main(["--config", str(config), "--test-gsm8k", str(res / "world/problems/test_gsm8k.jsonl"),
              "--test-math", str(res / "world/problems/test_math.jsonl"), "--out-dir", str(res / "world/web"),
              "--log-level", "WARNING"])
    shards = [f"{i:04d}" for i in range(tiny["world"]["web"]["shards"])]
    for s in shards:
        extract.main(["--config", str(config), "--log-level", "WARNING", "--input",
                      str(res / f"world/web/shard-{s}.warc.gz"), "--shard", s,
                      "--output", str(res / f"extract/shard-{s}.parquet"),
                      "--signatures", str(res / f"extract/shard-{s}.minhash.npy"),
                      "--stats", str(res / f"extract/shard-{s}.stats.json")])
    return config, res, shards


@pytest.mark.parametrize("band_groups", [1, 4])
def test_tiny_world_clusters_are_those_of_the_single_job(tiny_world_extract, band_groups):
    """Both paths through their CLIs, as the rules run them; the sharded one with 1 and 4 band groups."""
    config, res, shards = tiny_world_extract
    c = ["--config", str(config), "--log-level", "WARNING", "--set", f"corpus.dedup.band_groups={band_groups}"]
    docs = [str(res / f"extract/shard-{s}.parquet") for s in shards]
    sigs = [str(res / f"extract/shard-{s}.minhash.npy") for s in shards]
    out = res / f"g{band_groups}"
    dedup.main(c + ["--shards", *docs, "--signatures", *sigs, "--output", str(out / "single.parquet"),
                    "--stats", str(out / "single.json")])
    dedup_shards.main(c + ["url", "--shards", *docs, "--signatures", *sigs, "--output", str(out / "url.parquet"),
                           "--active", str(out / "active.npy"), "--stats", str(out / "url.json")])
    groups = [f"{g:02d}" for g in range(band_groups)]
    for g in groups:
        dedup_shards.main(c + ["bands", "--group", g, "--signatures", *sigs, "--active", str(out / "active.npy"),
                               "--output", str(out / f"group-{g}.npy"), "--stats", str(out / f"group-{g}.json")])
    dedup_shards.main(c + ["merge", "--shards", *docs, "--url", str(out / "url.parquet"),
                           "--edges", *[str(out / f"group-{g}.npy") for g in groups],
                           "--output", str(out / "removed.parquet"), "--stats", str(out / "stats.json")])
    single, sharded = pq.read_table(out / "single.parquet"), pq.read_table(out / "removed.parquet")
    assert single.num_rows > 50 and "near_duplicate" in single.column("reason").to_pylist()
    assert sharded.equals(single)


def test_common_crawl_plan_fans_dedup_out_over_band_groups(tmp_path):
    cfg = config_section("deepseekmath")
    cfg["corpus"]["commoncrawl"]["num_files"] = 100
    cfg["corpus"]["dedup"]["band_groups"] = 4
    jobs = dry_run(tmp_path, cfg)
    assert jobs["corpus_extract"] == jobs["corpus_pool"] == 100
    assert jobs["corpus_dedup_url"] == 1 and jobs["corpus_dedup_bands"] == 4 and jobs["corpus_dedup"] == 1


def test_tiny_plan_has_one_band_group_and_a_bad_fan_out_is_named(tmp_path):
    cfg = config_section("tiny")
    jobs = dry_run(tmp_path, cfg)
    assert jobs["corpus_dedup_url"] == jobs["corpus_dedup_bands"] == jobs["corpus_dedup"] == 1
    cfg["corpus"]["dedup"]["band_groups"] = cfg["corpus"]["dedup"]["bands"] + 1
    with pytest.raises(AssertionError, match="band_groups = 21"):
        dry_run(tmp_path, cfg)
