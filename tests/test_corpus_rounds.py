"""The mining loop's pieces: filters and stats, domain discovery and path annotation, selection,
reliable negatives, convergence and carry-over, the funnel (corpus/filters.py, domains.py, rounds.py,
funnel.py)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.document import Document
from corpus.domains import (
    CollectedPathAnnotator,
    RulesPathAnnotator,
    ScorePathAnnotator,
    build_annotator,
    domain_stats,
    math_domains,
    path_prefix,
)
from corpus.filters import IdSetFilter, MinTokensFilter, StepStats, apply_filter, count_in, count_out
from corpus.funnel import aggregate, build_funnel, to_markdown
from corpus.rounds import drop_reasons, overlap, reliable_negatives, round_budget, select_mask, select_round

CFG = {
    "select": {"mode": "threshold", "threshold": 0.5, "token_budget": 10**9},
    "domains": {"min_kept_fraction": 0.1, "min_domain_pages": 3, "annotator": "score", "rules_file": None,
                "path_depth": 1, "path_min_pages": 3, "path_min_score": 0.3},
    "rounds": {"max_rounds": 4, "convergence_overlap": 0.98},
    "classifier": {"negatives_quantile": 0.5},
}


def test_filters_count_every_document():
    stats = StepStats("t")
    docs = [Document("word " * n, f"s0000-{n:07d}") for n in (0, 3, 10, 20)]
    out = list(count_out(apply_filter(apply_filter(count_in(docs, stats), MinTokensFilter(5), stats),
                                      IdSetFilter({"s0000-0000020": "url_duplicate"}), stats), stats))
    assert [d.id for d in out] == ["s0000-0000010"]
    d = stats.to_dict()
    assert d["docs_in"] == 4 and d["docs_out"] == 1 and d["tokens_in"] == 33 and d["tokens_out"] == 10
    assert d["dropped"] == {"empty_text": 1, "too_short": 1, "url_duplicate": 1}
    assert d["dropped_tokens"] == {"empty_text": 0, "too_short": 3, "url_duplicate": 20}


def test_stats_files_round_trip_and_bad_files_are_named(tmp_path):
    s = StepStats("extract", shard=2)
    s.seen(5)
    s.kept(5)
    s.save(tmp_path / "s.json")
    assert StepStats.load(tmp_path / "s.json")["shard"] == 2
    (tmp_path / "bad.json").write_text('{"step": "x"}')
    with pytest.raises(ValueError, match="bad.json.*not a corpus stats file"):
        StepStats.load(tmp_path / "bad.json")


def test_path_prefix():
    assert path_prefix("https://mathoverflow.net/questions/123/title", 1) == "/questions/"
    assert path_prefix("https://a.org/questions/123/title", 2) == "/questions/123/"
    assert path_prefix("https://a.org/index.html", 1) == "/"
    assert path_prefix("https://a.org/", 1) == "/"
    assert path_prefix("https://a.org/notes/page.html", 1) == "/notes/"


def test_a_domain_is_math_above_the_kept_fraction():
    domains = ["m.org"] * 10 + ["x.org"] * 10 + ["tiny.org"] * 2
    kept = [True] * 2 + [False] * 8 + [True] + [False] * 9 + [True] * 2
    stats = domain_stats(domains, kept)
    assert stats["m.org"].kept_fraction == 0.2
    # paper: *more than* 10%; x.org has exactly 10%; tiny.org has too few pages to judge
    assert math_domains(stats, 0.1, 3) == ["m.org"]


def test_score_annotator_proposes_high_scoring_paths():
    ann = ScorePathAnnotator(depth=1, min_pages=3, min_score=0.3)
    urls = [f"https://f.org/questions/{i}/t" for i in range(5)] + [f"https://f.org/jobs/{i}" for i in range(5)] + \
        ["https://f.org/about", "https://f.org/help/1", "https://f.org/help/2"]
    scores = [0.9, 0.2, 0.4, 0.35, 0.8] + [0.01] * 5 + [0.9, 0.9, 0.9]
    paths = ann.annotate("f.org", urls, scores)
    assert paths == ["/questions/"]  # /help/ has only 2 pages, / only 1
    assert ann.matches("https://f.org/questions/99/new", paths) and not ann.matches("https://f.org/jobs/1", paths)


def test_rules_annotator_reads_a_rules_file(tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("# the paper's manual annotation\nmathoverflow.net /questions/*\n*.stackexchange.com /questions/*\n")
    ann = RulesPathAnnotator.from_file(rules)
    assert ann.annotate("math.stackexchange.com", [], []) == ["/questions/*"]
    assert ann.annotate("example.org", [], []) == []
    assert ann.matches("https://mathoverflow.net/questions/1/x", ["/questions/*"])
    assert not ann.matches("https://mathoverflow.net/users/1", ["/questions/*"])
    assert isinstance(build_annotator({**CFG["domains"], "annotator": "rules", "rules_file": str(rules)}),
                      RulesPathAnnotator)
    (tmp_path / "bad.txt").write_text("mathoverflow.net questions\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        RulesPathAnnotator.from_file(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="rules_file"):
        build_annotator({**CFG["domains"], "annotator": "rules"})


def test_select_by_threshold_and_by_token_budget():
    scores = np.array([0.9, 0.6, 0.95, 0.4, 0.7])
    tokens = np.array([100, 100, 300, 100, 100])
    ids = ["a", "b", "c", "d", "e"]
    assert select_mask(scores, tokens, ids, "threshold", 0.5, 0).tolist() == [True, True, True, False, True]
    # ranked c (300), a (400), e (500), b (600): a budget of 500 keeps c, a, e
    assert select_mask(scores, tokens, ids, "token_budget", 0.5, 500).tolist() == [True, False, True, False, True]
    assert select_mask(scores, tokens, ids, "token_budget", 0.8, 500).tolist() == [True, False, True, False, False]


def test_drops_are_named_by_what_dropped_them():
    scores = np.array([0.9, 0.6, 0.95, 0.4, 0.7])
    tokens = np.array([100, 100, 300, 100, 100])
    ids = ["a", "b", "c", "d", "e"]
    # d is under the threshold; b is above it but ranked past the 500-word budget (c, a, e fit)
    assert drop_reasons(scores, tokens, ids, "token_budget", 0.5, 500).tolist() == \
        ["", "over_token_budget", "", "below_threshold", ""]
    assert drop_reasons(scores, tokens, ids, "threshold", 0.5, 1).tolist() == ["", "", "", "below_threshold", ""]


def test_round_budgets_are_the_papers_40b_then_the_final_size():
    sel = {"token_budget": 40_000_000_000, "final_token_budget": 120_000_000_000}
    assert [round_budget(sel, r) for r in (1, 2, 4)] == [40_000_000_000, 120_000_000_000, 120_000_000_000]
    assert round_budget({"token_budget": 7, "final_token_budget": None}, 3) == 7


def test_collected_annotator_applies_the_domain_rule_to_paths():
    ann = CollectedPathAnnotator(depth=1, min_pages=3, min_kept_fraction=0.1)
    urls = ([f"https://s.org/questions/{i}" for i in range(20)] + [f"https://s.org/users/{i}" for i in range(10)]
            + [f"https://s.org/tags/{i}" for i in range(10)] + ["https://s.org/a/1", "https://s.org/a/2"])
    # 3/20 questions collected (15% > 10%), 1/10 users (exactly 10%: not more), 0 tags, 2/2 under /a/ (< 3 pages)
    kept = [i < 3 for i in range(20)] + [i == 0 for i in range(10)] + [False] * 10 + [True, True]
    assert ann.annotate("s.org", urls, [0.0] * len(urls), kept) == ["/questions/"]
    assert ann.matches("https://s.org/questions/99/t", ["/questions/"])
    with pytest.raises(ValueError, match="kept flags"):
        ann.annotate("s.org", urls, [0.0] * len(urls))


def test_overlap():
    assert overlap({"a", "b", "c", "d"}, {"a", "b", "c", "x"}) == 0.75
    assert overlap(set(), set()) == 1.0 and overlap(set(), {"a"}) == 0.0


def test_reliable_negatives_accumulate_and_exclude_kept_pages():
    ids = ["a", "b", "c", "d"]
    scores = np.array([0.01, 0.02, 0.9, 0.3])
    excluded = np.array([False, False, True, False])
    assert reliable_negatives(ids, scores, excluded, 0.5, None) == ["a", "b"]
    assert reliable_negatives(ids, scores, excluded, 0.5, {"d", "c"}) == ["a", "b", "d"]  # kept c stays out
    assert reliable_negatives(ids, scores, excluded, 1.0, None) == ["a", "b", "d"]  # paper: all not collected


def _scores(rows):
    return pa.table({"id": [r[0] for r in rows], "url": [r[1] for r in rows], "domain": [r[1].split("/")[2] for r in rows],
                     "n_tokens": [100] * len(rows), "score": [r[2] for r in rows]})


def test_select_round_discovers_paths_and_converges():
    rows = ([(f"s0000-{i:07d}", f"https://m.org/questions/{i}", 0.9) for i in range(6)]
            + [(f"s0000-{i:07d}", f"https://m.org/questions/{i}", 0.35) for i in range(6, 9)]
            + [(f"s0000-{i:07d}", f"https://m.org/jobs/{i}", 0.01) for i in range(9, 14)]
            + [(f"s0001-{i:07d}", f"https://shop.com/p/{i}", 0.02) for i in range(10)])
    kept, pos, neg, report, state = select_round(_scores(rows), 1, CFG, None, None)
    assert kept.num_rows == 6 and state["overlap_with_previous"] is None and not state["converged"]
    assert set(kept.column("first_round").to_pylist()) == {1}
    assert report["m.org"]["math_paths"] == ["/questions/"] and "shop.com" not in report
    # the unkept pages under /questions/ become next round's positives; jobs pages do not
    assert pos.column("id").to_pylist() == [f"s0000-{i:07d}" for i in range(6, 9)]
    assert not set(neg.column("id").to_pylist()) & (set(kept.column("id").to_pylist()) | set(pos.column("id").to_pylist()))
    # no page of the math domain m.org is a negative (its low-scored /jobs/ pages neither): only shop.com
    assert {i for i in neg.column("id").to_pylist()} <= {f"s0001-{i:07d}" for i in range(10)}
    assert state["dropped"] == {"below_threshold": 24 - 6}  # 14 m.org + 10 shop.com pages, 6 kept
    # round 2: the same pages kept -> overlap 1.0 -> converged; first_round carried
    kept2, pos2, _, _, state2 = select_round(_scores(rows), 2, CFG, kept, pos, neg)
    assert state2["overlap_with_previous"] == 1.0 and state2["converged"] and state2["converged_at"] == 2
    assert set(kept2.column("first_round").to_pylist()) == {1}
    assert pos2.num_rows == pos.num_rows and state2["new_positives"] == 0


def test_negatives_never_come_from_a_site_the_round_started_to_collect():
    # m.org: 6 of 14 pages kept (a math domain); s.org: 1 of 20 kept (5%, under the 10% domain rule: a math
    # site outside the seed that round 1 just started to find); shop.com: 0 of 30 kept; x.net: 1 of 2 kept
    # (too small to judge a domain: 3 pages needed)
    rows = ([(f"s0000-{i:07d}", f"https://m.org/questions/{i}", 0.9 if i < 6 else 0.2) for i in range(14)]
            + [(f"s0001-{i:07d}", f"https://s.org/questions/{i}", 0.8 if i == 0 else 0.1) for i in range(20)]
            + [(f"s0002-{i:07d}", f"https://shop.com/p/{i}", 0.05) for i in range(30)]
            + [(f"s0003-{i:07d}", f"https://x.net/a/{i}", 0.7 if i == 0 else 0.05) for i in range(2)])
    cfg = {**CFG, "classifier": {"negatives_quantile": 1.0}}
    neg_domains = lambda t: {i.split("-")[0] for i in t.column("id").to_pylist()}  # noqa: E731
    # default (null): only math domains give no negatives, s.org's 19 uncollected pages are negatives
    _, _, neg, _, state = select_round(_scores(rows), 1, cfg, None, None)
    assert neg_domains(neg) == {"s0001", "s0002", "s0003"} and state["negative_free_domains"] == 1
    assert neg.num_rows == 19 + 30 + 1
    # 0.02: s.org (5% > 2%) gives none either; shop.com (0%) and the 2-page x.net stay random negatives
    cfg["classifier"]["negatives_max_domain_kept"] = 0.02
    _, _, neg, _, state = select_round(_scores(rows), 1, cfg, None, None)
    assert neg_domains(neg) == {"s0002", "s0003"} and neg.num_rows == 30 + 1 and state["negative_free_domains"] == 2
    # the bar is "more than": a domain with exactly 5% kept stays a source of negatives at 0.05
    cfg["classifier"]["negatives_max_domain_kept"] = 0.05
    _, _, neg, _, _ = select_round(_scores(rows), 1, cfg, None, None)
    assert "s0001" in neg_domains(neg)


def test_isolated_hits_need_the_outside_domain_threshold():
    # m.org: 4 of 5 pages collected (a math domain), two of them at 0.6 and 0.7; d.io: 1 of 20 collected
    # (5%: not a math domain), its one hit at 0.8; e.io: 1 of 20 collected at 0.95
    rows = ([(f"s0000-{i:07d}", f"https://m.org/q/{i}", sc) for i, sc in enumerate([0.99, 0.95, 0.6, 0.7, 0.1])]
            + [(f"s0001-{i:07d}", f"https://d.io/p/{i}", 0.8 if i == 0 else 0.01) for i in range(20)]
            + [(f"s0002-{i:07d}", f"https://e.io/p/{i}", 0.95 if i == 0 else 0.01) for i in range(20)])
    cfg = {**CFG, "select": {**CFG["select"], "outside_domain_threshold": 0.9},
           "classifier": {"negatives_quantile": 1.0}}
    kept, _, neg, report, state = select_round(_scores(rows), 1, cfg, None, None)
    # m.org's 0.6 and 0.7 pages stay (math domain, threshold 0.5); d.io's 0.8 hit goes, e.io's 0.95 stays
    assert kept.column("id").to_pylist() == ["s0000-0000000", "s0000-0000001", "s0000-0000002", "s0000-0000003",
                                             "s0002-0000000"]
    assert state["dropped"] == {"below_threshold": 1 + 19 + 19, "outside_math_domains": 1}
    assert state["dropped_tokens"]["outside_math_domains"] == 100
    # what was collected still counts for discovery (m.org only) and never becomes a negative
    assert set(report) == {"m.org"} and "s0001-0000000" not in neg.column("id").to_pylist()
    # null: the paper's rule, every collected page is kept
    cfg["select"]["outside_domain_threshold"] = None
    kept, _, _, _, state = select_round(_scores(rows), 1, cfg, None, None)
    assert kept.num_rows == 6 and "outside_math_domains" not in state["dropped"]


def _write_stats(path, step, rnd, docs_in, docs_out, dropped, shard=None):
    s = StepStats(step, round=rnd, shard=shard)
    s.docs_in, s.docs_out, s.tokens_in, s.tokens_out = docs_in, docs_out, docs_in * 10, docs_out * 10
    for k, v in dropped.items():
        s.dropped[k] = v
    s.save(path)
    return str(path)


def test_funnel_aggregates_shards_and_checks_consistency(tmp_path):
    files = [_write_stats(tmp_path / "e0.json", "extract", 0, 10, 8, {"too_short": 2}, 0),
             _write_stats(tmp_path / "e1.json", "extract", 0, 5, 5, {}, 1),
             _write_stats(tmp_path / "s1.json", "select", 1, 13, 4, {"not_selected_threshold": 9})]
    rows = aggregate(files)
    assert [(r["step"], r["round"], r["docs_in"], r["docs_out"], r["files"]) for r in rows] == \
        [("extract", 0, 15, 13, 2), ("select", 1, 13, 4, 1)]
    state = {"round": 1, "kept_docs": 4, "kept_tokens": 40, "overlap_with_previous": None, "converged": False,
             "converged_at": None, "carried_over_from": None, "math_domains": 1, "new_positives": 2}
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "d.jsonl").write_text(json.dumps({"url": "u", "reason": "contaminated_ngram", "benchmark": "gsm8k",
                                                  "words": "a b"}) + "\n")
    f = build_funnel(files, [tmp_path / "state.json"], [tmp_path / "d.jsonl"])
    assert f["final"] == {"docs": 4, "tokens": 40} and f["decontamination"]["by_benchmark"] == {"gsm8k": 1}
    md = to_markdown(f)
    assert "| extract | - | 15 | 13 | 150 | 130 | too_short 2 |" in md and "| 1 | 4 | 40 | - | 1 | 2 | no |" in md
    bad = _write_stats(tmp_path / "bad.json", "dedup", 0, 10, 8, {"near_duplicate": 1})
    with pytest.raises(ValueError, match="dedup round 0.*inconsistent"):
        aggregate([bad])


def test_final_table_joins_kept_pages_with_their_text(tmp_path):
    from corpus.export import final_table, web_text_table
    from corpus.shards import write_docs, write_parts

    docs = [Document(f"text {i}", f"s0000-{i:07d}", f"https://a.org/{i}", {"domain": "a.org"}) for i in range(5)]
    write_docs(tmp_path / "pool.parquet", docs)
    kept = pa.table({"id": ["s0000-0000003", "s0000-0000001"], "score": [0.9, 0.7], "first_round": [2, 1]})
    t = final_table(kept, [str(tmp_path / "pool.parquet")])
    assert t.column_names == ["text", "url", "domain", "score", "round"]
    assert t.column("text").to_pylist() == ["text 1", "text 3"] and t.column("round").to_pylist() == [1, 2]
    with pytest.raises(ValueError, match="kept pages"):
        final_table(pa.table({"id": ["nope"], "score": [1.0], "first_round": [1]}), [str(tmp_path / "pool.parquet")])
    parts = write_parts(tmp_path / "web", web_text_table([str(tmp_path / "pool.parquet")]), part_docs=2)
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sum(pq.read_table(p).num_rows for p in parts) == 5
