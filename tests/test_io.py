"""Atomic writes: a failed write leaves neither a partial file nor a temp file behind."""

import json

import pytest

from pipeline.io import atomic_path, read_jsonl, write_json, write_jsonl


def test_failed_write_leaves_previous_file_intact(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "partial')
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_directory_replaced_atomically(tmp_path):
    target = tmp_path / "model"
    for version in (1, 2):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "w.txt").write_text(str(version))
    assert (target / "w.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_read_jsonl_names_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    write_jsonl(path, [{"a": 1}])
    with open(path, "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"x.jsonl:2: bad JSON record"):
        list(read_jsonl(path))
    assert list(read_jsonl(path, strict=False)) == [{"a": 1}]


def test_read_jsonl_reports_each_skipped_line_to_the_caller(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{not json\n[1, 2]\n\n{"b": 2}\n')
    skipped = []
    rows = list(read_jsonl(path, strict=False, on_skip=lambda reason, where: skipped.append((reason, where))))
    assert rows == [{"a": 1}, {"b": 2}]
    assert [w for _, w in skipped] == [f"{path}:2", f"{path}:3"]
    assert skipped[0][0].startswith("bad JSON") and skipped[1][0] == "not a JSON object (a list)"
