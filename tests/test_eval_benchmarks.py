"""Benchmark loaders: the real files in ../shared/data/bench, schema detection, field maps, bad records."""

import json
from collections import Counter
from pathlib import Path

import pytest

from grading.benchmarks import FieldMap, detect_schema, gsm8k_gold, last_boxed, load_benchmark, parse_level

BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench"
needs_bench = pytest.mark.skipif(not BENCH.exists(), reason=f"{BENCH} not present (shared benchmark data)")


@pytest.mark.shared
@needs_bench
def test_gsm8k_test_file():
    b = load_benchmark("gsm8k", data=BENCH / "gsm8k_test.jsonl")
    assert (b.schema, len(b.problems), b.skipped) == ("gsm8k", 1319, [])
    assert b.problems[0].answer == "18"
    # README: 14 gold answers have a thousands separator; all become plain integers
    assert all(p.answer.lstrip("-").isdigit() for p in b.problems)
    assert len({p.problem_id for p in b.problems}) == 1319


@pytest.mark.shared
@needs_bench
def test_math_test_file_subjects_and_levels():
    b = load_benchmark("math", data=BENCH / "math_test.jsonl")
    assert (b.schema, len(b.problems), b.skipped) == ("math", 5000, [])
    subjects = Counter(p.subject for p in b.problems)
    assert subjects["Algebra"] == 1187 and subjects["Counting & Probability"] == 474 and len(subjects) == 7
    assert Counter(p.level for p in b.problems) == {1: 437, 2: 894, 3: 1131, 4: 1214, 5: 1324}
    assert b.problems[0].answer == "2"


@pytest.mark.shared
@needs_bench
def test_math500_gold_equals_last_boxed_of_its_solution():
    b = load_benchmark("math500", data=BENCH / "math500_test.jsonl")
    assert (b.schema, len(b.problems)) == ("math500", 500)
    assert b.problems[0].problem_id == "test/precalculus/807.json" and b.problems[0].level == 2
    rows = [json.loads(line) for line in (BENCH / "math500_test.jsonl").read_text().splitlines()]
    assert all(last_boxed(r["solution"]) == r["answer"] for r in rows)


@pytest.mark.shared
@needs_bench
def test_limit_keeps_the_first_problems():
    b = load_benchmark("math500", data=BENCH / "math500_test.jsonl", limit=5)
    assert len(b.problems) == 5 and b.problems[0].problem_id == "test/precalculus/807.json"


def test_last_boxed_matches_braces():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{\\{1,2\\}}") == "\\{1,2\\}"
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed") is None


def test_gsm8k_gold_and_levels():
    assert gsm8k_gold("steps\n#### 2,125") == "2125"
    assert gsm8k_gold("#### -3.5") == "-3.5"
    assert gsm8k_gold("no marker") is None
    assert [parse_level(v) for v in ("Level 3", 4, "2", "Level ?", None)] == [3, 4, 2, None, None]


def test_detect_schema_and_world_records(tmp_path):
    assert detect_schema({"question": "q", "answer": "#### 1"}) == "gsm8k"
    assert detect_schema({"problem": "p", "solution": "s"}) == "math"
    assert detect_schema({"problem": "p", "answer": "a", "solution": "s"}) == "math500"
    assert detect_schema({"problem_id": "x", "family": "math", "question": "q", "answer": "a"}) == "problem"
    with pytest.raises(ValueError, match="field map"):
        detect_schema({"prompt": "p", "target": "t"})
    world = tmp_path / "rl.jsonl"
    world.write_text(json.dumps({"problem_id": "math-000001", "family": "math", "subject": "Algebra", "level": 2,
                                 "question": "Solve", "answer": "\\frac{3}{4}", "cot": "..."}) + "\n")
    b = load_benchmark("world_math", data=world)
    assert b.schema == "problem" and b.problems[0].problem_id == "math-000001"
    assert (b.problems[0].answer, b.problems[0].subject, b.problems[0].level) == ("\\frac{3}{4}", "Algebra", 2)


def test_bad_records_are_skipped_counted_and_located(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join([
        json.dumps({"question": "q1", "answer": "#### 1"}),
        "{broken",
        json.dumps({"question": "q2", "answer": "no final answer"}),
        json.dumps([1, 2]),
        "",
        json.dumps({"question": "", "answer": "#### 3"}),
        json.dumps({"question": "q4", "answer": "#### 4", "id": "dup"}),
        json.dumps({"question": "q5", "answer": "#### 5", "id": "dup"}),
    ]) + "\n")
    b = load_benchmark("toy", data=path)
    assert [p.question for p in b.problems] == ["q1", "q4"]
    assert b.num_records == 7 and len(b.skipped) == 5
    assert b.skipped[0].startswith(f"{path}:2: bad JSON")
    assert b.skipped[1] == f"{path}:3: 'answer' has no final answer after '####'"
    assert b.skipped[2] == f"{path}:4: not a JSON object (a list)"
    assert b.skipped[3] == f"{path}:6: field 'question' missing or empty"
    assert b.skipped[4] == f"{path}:8: duplicate problem_id 'dup'"
    assert b.summary()["num_skipped"] == 5


def test_no_usable_problem_raises_naming_the_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "nothing"}) + "\n")
    with pytest.raises(ValueError, match=r"empty\.jsonl: no usable problems in 1 records; first problem: .*:1:"):
        load_benchmark("toy", data=path)
    with pytest.raises(FileNotFoundError):
        load_benchmark("toy", data=tmp_path / "missing.jsonl")


def test_field_map_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "custom.parquet"
    pq.write_table(pa.table({"uid": ["a", "b", "c"], "prompt": ["p1", "p2", "p3"],
                             "target": ["so \\boxed{1}", "\\boxed{x^2}", "none"], "lvl": ["Level 1", "2", None]}),
                   path)
    b = load_benchmark("custom", data=path, fields="question=prompt,answer=target,id=uid,level=lvl,answer_format=boxed")
    assert [(p.problem_id, p.answer, p.level) for p in b.problems] == [("a", "1", 1), ("b", "x^2", 2)]
    assert b.skipped == [f"{path}:row 2: field 'target' has no boxed final answer"]
    with pytest.raises(ValueError, match="unknown keys"):
        FieldMap.parse("question=a,answer=b,colour=red")
    with pytest.raises(ValueError, match="answer_format"):
        FieldMap.parse({"question": "a", "answer": "b", "answer_format": "xml"})


def test_hub_loading_is_real_and_fails_clearly_offline(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        if name == "geometry":
            raise ConnectionError("no network")
        return [{"problem": f"{name} problem", "solution": "\\boxed{3}", "level": "Level 2", "type": "Algebra"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    with pytest.raises(RuntimeError, match="EleutherAI/hendrycks_math.*geometry.*--data"):
        load_benchmark("math")
    assert calls[:2] == [("EleutherAI/hendrycks_math", "algebra", "test"),
                         ("EleutherAI/hendrycks_math", "counting_and_probability", "test")]
    calls.clear()
    b = load_benchmark("math", limit=2)
    assert [p.question for p in b.problems] == ["algebra problem", "counting_and_probability problem"]
    assert b.source == "hub:EleutherAI/hendrycks_math" and b.schema == "math"
    with pytest.raises(ValueError, match="no --data file"):
        load_benchmark("unknown_bench")
