"""SFT data (paper §3.1): world records and field-mapped files become examples per format, bad records are
skipped and counted, decontamination (the corpus stage's NgramMatcher) drops eval questions, and
`python -m sft.train` writes a checkpoint transformers loads and eval can generate from."""

import json
from pathlib import Path

import pytest
import yaml

from sft.data import DataStats, SFTSource, build_matcher, decontaminate, load_examples

BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench"


def _world_record(i: int, a: int, b: int) -> dict:
    q = f"Sam has {a} hats. Mia has {b} more hats than Sam. How many hats does Mia have?"
    return {
        "problem_id": f"gsm-sft-{i:06d}", "family": "gsm8k", "subject": "Arithmetic", "level": 1, "question": q,
        "answer": str(a + b),
        "cot": f"Sam has {a} hats. Mia has {b} more hats than Sam, so Mia has {a} + {b} = {a + b} hats. "
               f"The answer is \\boxed{{{a + b}}}",
        "pot": f"```python\nsam = {a}\nmia = sam + {b}\nprint(mia)\n```",
        "tool": f"Sam has {a} hats.\n```python\nprint({a} + {b})\n```\n```output\n{a + b}\n```\n"
                f"Mia has {a + b} hats. The answer is \\boxed{{{a + b}}}",
    }


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_world_records_give_one_example_per_format_and_bad_ones_are_counted(tmp_path):
    rows = [_world_record(i, i % 9 + 1, i % 7 + 1) for i in range(6)]
    rows[1] = dict(rows[1], cot="Mia has some hats.")  # CoT without \boxed{}
    rows[2] = dict(rows[2], question="")
    rows.append("{broken json")
    rows.append(dict(_world_record(9, 2, 3), pot=None))  # no PoT for this record: no example, no error
    f = _write_jsonl(tmp_path / "sft.jsonl", rows)
    examples, stats = load_examples([SFTSource.from_config({"name": "world", "path": str(f)})], ["cot", "pot", "tool"])
    assert stats.records["world"] == 8
    assert dict(stats.examples) == {"cot": 5, "pot": 5, "tool": 6}
    assert stats.skipped == {"world: cot": 1, "world: no question in field 'question'": 1, "world: bad JSON": 1}
    assert {e.example_id for e in examples if e.fmt == "tool"} >= {"gsm-sft-000000/tool", "gsm-sft-000009/tool"}
    only_cot, _ = load_examples([SFTSource.from_config({"name": "w", "path": str(f)})], ["cot"])
    assert {e.fmt for e in only_cot} == {"cot"}


@pytest.mark.shared
def test_field_mapping_reads_gsm8k_style_files(tmp_path):
    src = BENCH / "gsm8k_test.jsonl"
    if not src.exists():
        pytest.skip(f"shared benchmark data not found at {BENCH}")
    small = _write_jsonl(tmp_path / "gsm8k.jsonl", src.read_text().splitlines()[:20])
    spec = SFTSource.from_config({"name": "gsm8k", "path": str(small), "cot_style": "gsm8k",
                                  "fields": {"id": None, "question": "question", "cot": "answer", "pot": None,
                                             "tool": None}})
    examples, stats = load_examples([spec], ["cot", "pot", "tool"])
    assert len(examples) == 20 and dict(stats.examples) == {"cot": 20}
    assert all(e.response.endswith("}") and "\\boxed{" in e.response and "<<" not in e.response for e in examples)
    assert examples[0].example_id == "gsm8k-0/cot"


def test_a_source_without_usable_examples_is_an_error(tmp_path):
    f = _write_jsonl(tmp_path / "x.jsonl", [{"prompt": "q", "completion": "a"}])
    with pytest.raises(ValueError, match="no usable example.*fields"):
        load_examples([SFTSource.from_config({"name": "x", "path": str(f)})], ["cot"])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_examples([SFTSource.from_config({"name": "y", "path": str(tmp_path / "none.jsonl")})], ["cot"])
    with pytest.raises(ValueError, match="exactly one of"):
        SFTSource.from_config({"name": "z"})


def test_decontamination_drops_examples_quoting_an_eval_question(tmp_path):
    test_q = ("Ann buys 9 pens for 5 dollars each. She also buys 8 books for 9 dollars each. "
              "How many dollars does Ann spend?")
    _write_jsonl(tmp_path / "test_gsm8k.jsonl", [{"question": test_q, "answer": "so 117.\n#### 117"},
                                                 {"question": "What is 2 plus 2?", "answer": "#### 4"}])
    rows = [_world_record(i, i + 1, 2) for i in range(4)]
    rows[0] = dict(rows[0], question="Here is one: " + test_q)  # shares a 10-gram with the eval question
    rows[1] = dict(rows[1], cot="Recall: what is 2 plus 2? It is 4. " + rows[1]["cot"])  # short question, exact
    f = _write_jsonl(tmp_path / "sft.jsonl", rows)
    examples, stats = load_examples([SFTSource.from_config({"name": "w", "path": str(f)})], ["cot"])
    matcher = build_matcher([{"name": "world_gsm8k", "path": str(tmp_path / "test_gsm8k.jsonl")}], n=10,
                            min_exact=3)
    kept = decontaminate(examples, matcher, stats)
    assert [e.example_id for e in kept] == ["gsm-sft-000002/cot", "gsm-sft-000003/cot"]
    assert stats.contaminated == {"world_gsm8k": 2}


def test_sft_cli_writes_a_loadable_checkpoint(tmp_path):
    """sft.train from a tiny pretrained model: packed rows, loss only on responses, save_pretrained output."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.generation import build_generator
    from pipeline.models import build_model, save, train_tokenizer
    from sft.train import main

    torch.set_num_threads(1)
    rows = [_world_record(i, i % 9 + 1, i % 5 + 1) for i in range(24)]
    (tmp_path / "results/t/world/problems").mkdir(parents=True)
    _write_jsonl(tmp_path / "results/t/world/problems/sft.jsonl", rows)
    _write_jsonl(tmp_path / "results/t/world/problems/test_gsm8k.jsonl",
                 [{"question": "Tom has 4 cups. How many cups does Tom have?", "answer": "#### 4"}])
    from grading.prompts import user_message

    texts = [r[k] for r in rows for k in ("question", "cot", "pot", "tool")]
    tok = train_tokenizer(texts + [user_message("", f) for f in ("cot", "pot", "tool")] * 5, vocab_size=400)
    save(build_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=0), tok, tmp_path / "init")
    problems = tmp_path / "results/t/world/problems"
    cfg = {"name": "t", "results_root": str(tmp_path / "results"), "threads": 1,
           "sft": {"data": [{"name": "world", "path": str(problems / "sft.jsonl")}], "steps": 4, "batch_size": 4, "micro_batch_size": 2, "max_len": 256, "save_every": 2,
                   "optimizer": {"lr": 0.003},
                   "decontaminate": {"benchmarks": [{"name": "world_gsm8k",
                                                     "path": str(problems / "test_gsm8k.jsonl")}]}}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "results/t/sft/mined/model"
    main(["--config", str(tmp_path / "cfg.yaml"), "--init", str(tmp_path / "init"), "--out", str(out)])
    run = json.loads((out.parent / "run.json").read_text())
    assert run["packing"] is True and run["examples"] == 72 and run["steps"] == 4
    assert run["data"]["examples"] == {"cot": 24, "pot": 24, "tool": 24}
    assert 0 < run["loss_tokens"] < run["example_tokens"]
    metrics = [json.loads(x) for x in (out.parent / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4] and all(m["tokens_per_s"] > 0 for m in metrics)
    assert not (out.parent / "checkpoints").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert AutoTokenizer.from_pretrained(out).chat_template
    gen = build_generator("hf", str(out))
    outs = gen.generate(["<|user|>\nSam has 2 hats.\n<|assistant|>\n"], max_new_tokens=4)
    assert len(outs[0][0].token_ids) <= 4 and model.config.use_cache


def test_stats_are_json_serialisable():
    s = DataStats()
    s.skip("f:1", "w", "cot: no box")
    assert json.loads(json.dumps(s.as_dict()))["skipped"] == {"w: cot": 1}


def test_hub_source_concatenates_configs(monkeypatch):
    """A hub SFT source (e.g. MATH train, one config per subject) with a field mapping."""
    import datasets

    def fake_load(path, name=None, split=None):
        assert path == "EleutherAI/hendrycks_math" and split == "train"
        return datasets.Dataset.from_list([{"problem": f"{name} problem {i}?",
                                            "solution": f"So it is {i}. $\\boxed{{{i}}}$"} for i in range(3)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    spec = SFTSource.from_config({"name": "math_train", "hub": "EleutherAI/hendrycks_math",
                                  "hub_configs": ["algebra", "geometry"],
                                  "fields": {"id": None, "question": "problem", "cot": "solution", "pot": None,
                                             "tool": None}})
    examples, stats = load_examples([spec], ["cot", "pot"])
    assert [e.question for e in examples] == [f"{c} problem {i}?" for c in ("algebra", "geometry") for i in range(3)]
    assert stats.records["math_train"] == 6 and dict(stats.examples) == {"cot": 6}
