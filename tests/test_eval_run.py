"""The eval CLI: files it writes, recomputation from samples.jsonl, truncation, tool-integrated rounds.

Most tests swap in a scripted generator (with the real grader) so they check the harness's arithmetic
exactly; `test_cli_on_tiny_checkpoint_real_benchmarks` runs the real generator too, on a tiny random
model against ../shared/data/bench.
"""

import json
import types

import pytest

from eval import run as eval_run
from eval import settings as eval_settings
from eval import traces as eval_traces
from pipeline.config import ConfigError
from pipeline.generation import Completion
from tests import hand_metrics
from tests.conftest import shared_data

PROBLEMS = [
    {"question": "Q0: 1+1?", "answer": "1+1=2\n#### 2"},
    {"question": "Q1: 2+2?", "answer": "#### 4"},
    {"question": "Q2: 5*5?", "answer": "#### 1,000"},  # thousands separator in the gold
    {"question": "Q3: nothing answers this", "answer": "#### 9"},
]
# What the scripted model answers for each question, sample by sample (n = 4); "" = no box.
SCRIPT = {
    "Q0": ["2", "2", "3", "2"],
    "Q1": ["5", "4", "5", "4"],  # 2-2 tie: 5 appears first, so Maj@4 is wrong
    "Q2": ["1000", "", "", "7"],
    "Q3": ["", "", "", ""],
}
GREEDY = {"Q0": "2", "Q1": "5", "Q2": "1000", "Q3": ""}


class ScriptedGenerator:
    """Answers from SCRIPT; the last sample of Q2 runs out of tokens without a box."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=1024, stop=None, seed=0):
        self.calls.append({"n": n, "temperature": temperature, "stop": stop, "seed": seed})
        out = []
        for p in prompts:
            q = next(k for k in SCRIPT if f"{k}:" in p)
            answers = [GREEDY[q]] if temperature == 0 else SCRIPT[q][:n]
            row = []
            for a in answers:
                if a:
                    row.append(Completion(f"So the answer is \\boxed{{{a}}}.", [1, 2, 3], [0.0] * 3, "stop"))
                else:
                    row.append(Completion("I keep thinking 42 43 44", list(range(max_new_tokens)),
                                          [0.0] * max_new_tokens, "length"))
            out.append(row)
        return out


@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory):
    from pipeline.models import train_tokenizer

    texts = [p["question"] + " " + p["answer"] for p in PROBLEMS] * 20 + ["Please reason step by step"] * 20
    d = tmp_path_factory.mktemp("model")
    train_tokenizer(texts, vocab_size=400).save_pretrained(d)
    return d


@pytest.fixture
def scripted(monkeypatch):
    gen = ScriptedGenerator()
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: gen)
    return gen


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "bench.jsonl"
    lines = [json.dumps(p) for p in PROBLEMS] + ["{not json", json.dumps({"question": "no gold", "answer": "x"})]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_writes_samples_and_metrics(scripted, tiny_tokenizer_dir, data_file, tmp_path):
    out = tmp_path / "out"
    eval_run.main(["--model", str(tiny_tokenizer_dir), "--benchmark", "toy", "--data", str(data_file),
                   "--n", "4", "--k", "1,2,4", "--temperature", "0.7", "--seed", "3", "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]

    assert len(rows) == 4 * (1 + 4)
    for key in ("problem_id", "sample_index", "completion", "pred", "correct", "status"):
        assert all(key in r for r in rows)
    assert metrics["greedy"] == pytest.approx(2 / 4)  # Q0 and Q2 (1000 == 1,000 after comma removal)
    assert metrics["n"] == 4 and metrics["k"] == [1, 2, 4]
    assert set(metrics["pass@k"]) == set(metrics["maj@k"]) == {"1", "2", "4"}
    # Pass@1 = mean fraction correct = (3/4 + 2/4 + 1/4 + 0) / 4
    assert metrics["pass@k"]["1"] == pytest.approx(1.5 / 4)
    assert metrics["pass@k"]["4"] == pytest.approx(3 / 4)
    # Maj@4: Q0 right, Q1 tie -> "5" first -> wrong, Q2 1000 vs 7 tie -> 1000 first -> right, Q3 none
    assert metrics["maj@k"]["4"] == pytest.approx(2 / 4)
    for key, want in [("model", str(tiny_tokenizer_dir)), ("benchmark", "toy"), ("temperature", 0.7),
                      ("seed", 3), ("format", "cot"), ("max_new_tokens", 1024)]:
        assert metrics[key] == want
    from grading.grader import GRADER_VERSION

    assert metrics["grader_version"] == GRADER_VERSION
    assert metrics["data"]["num_records"] == 6 and metrics["data"]["num_skipped"] == 2
    assert any(":5: bad JSON" in s for s in metrics["data"]["skipped_examples"])
    # Q2's second sample hit the length limit with no box: not an answer, whatever number it ended on.
    cut = next(r for r in rows if r["problem_id"] == "toy-00002" and r["sample_index"] == 1)
    assert cut["status"] == "truncated" and cut["pred"] is None and cut["vote_class"] == -1
    assert cut["finish_reason"] == "length"
    assert metrics["status_counts"]["sampled"]["truncated"] == 2 + 4  # Q2 x2, Q3 x4
    assert (out / "run.json").exists()
    # the greedy pass is a separate temperature-0 call; sampling uses the seed
    assert [c["temperature"] for c in scripted.calls] == [0.0, 0.7]
    assert scripted.calls[1]["seed"] == 3


def test_metrics_json_agrees_with_samples_recomputed_by_hand(scripted, tiny_tokenizer_dir, data_file, tmp_path):
    """Greedy, Pass@K and Maj@K (all C(n, K) subsets) recomputed from samples.jsonl by tests/hand_metrics.py,
    which votes on the extracted `pred` strings (not on the harness's vote classes)."""
    out = tmp_path / "out"
    eval_run.main(["--model", str(tiny_tokenizer_dir), "--benchmark", "toy", "--data", str(data_file),
                   "--n", "4", "--k", "1,2,3,4", "--seed", "11", "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    want = hand_metrics.metrics(rows, [1, 2, 3, 4])
    assert metrics["num_problems"] == want["num_problems"] == 4 and metrics["n"] == want["n"] == 4
    assert metrics["greedy"] == pytest.approx(want["greedy"])
    for k in (1, 2, 3, 4):
        assert metrics["pass@k"][str(k)] == pytest.approx(want["pass@k"][k]), k
        assert metrics["maj@k"][str(k)] == pytest.approx(want["maj@k"][k]), k
    # The same numbers worked out on paper from SCRIPT (K=2; pairs of 4 samples):
    # Pass@2 = (1 + 5/6 + 1/2 + 0) / 4; Maj@2: Q0 5/6 (only the pair "3","2" ties to "3"),
    # Q1 2/6 ("5" leads every tie), Q2 3/6 (every pair with sample 0), Q3 0.
    assert metrics["pass@k"]["2"] == pytest.approx(7 / 12)
    assert metrics["maj@k"]["2"] == pytest.approx(5 / 12)


def test_k_larger_than_n_is_rejected_before_generation(scripted, tiny_tokenizer_dir, data_file, tmp_path):
    with pytest.raises(ValueError, match="1..n=2"):
        eval_run.main(["--model", str(tiny_tokenizer_dir), "--benchmark", "toy", "--data", str(data_file),
                       "--n", "2", "--k", "1,4", "--out", str(tmp_path / "o")])
    assert scripted.calls == []


def test_settings_from_config_and_command_line(tmp_path):
    from pipeline.config import load_config

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        "name: toy\nresults_root: " + str(tmp_path / "results") + "\n"
        "generation: {backend: hf, batch_size: 8}\n"
        "eval:\n  n: 8\n  k: [1, 8]\n  temperature: 0.5\n  format: tool\n"
        "  benchmarks:\n    world_gsm8k: {data: '/data/world/test_gsm8k.jsonl'}\n"
        "    hubby: {hub: openai/gsm8k, hub_configs: [main], split: test, schema: gsm8k}\n")
    cfg = load_config(cfg_path)
    args = eval_run.build_parser().parse_args(["--model", "m", "--benchmark", "world_gsm8k", "--out", "o",
                                               "--temperature", "0.9"])
    s = eval_run.resolve_settings(args, cfg)
    assert s.data == "/data/world/test_gsm8k.jsonl"
    assert (s.n, s.k, s.temperature, s.format) == (8, [1, 8], 0.9, "tool")  # CLI beats config
    assert s.backend == "hf" and s.generator_options["batch_size"] == 8 and "backend" not in s.generator_options
    args = eval_run.build_parser().parse_args(["--model", "m", "--benchmark", "hubby", "--out", "o"])
    s = eval_run.resolve_settings(args, cfg)
    assert s.data is None and s.hub == {"path": "openai/gsm8k", "configs": ["main"], "split": "test",
                                        "schema": "gsm8k"}
    # the defaults are the schema's (config/schema/eval.schema.yaml), with no config at all
    s = eval_run.resolve_settings(args, None)
    assert (s.n, s.k, s.temperature, s.max_new_tokens) == (64, [1, 4, 16, 64], 0.7, 1024)


def test_a_placeholder_the_workflow_did_not_expand_is_refused(tmp_path):
    """The rules expand `{world_problems}` into the resolved config; a stage given the raw config says so."""
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("name: toy\neval:\n  benchmarks:\n    w: {data: '{world_problems}/test_gsm8k.jsonl'}\n")
    with pytest.raises(ConfigError, match=r"eval.benchmarks.w.data = '\{world_problems\}/test_gsm8k.jsonl' holds a "
                                          r"placeholder that only the workflow expands"):
        eval_run.main(["--config", str(cfg_path), "--model", "m", "--benchmark", "w", "--out", str(tmp_path / "o")])


class ToolGenerator:
    """First round ends in a code block; after its output comes back, states a boxed answer."""

    def __init__(self, long_continuation=False):
        self.long = long_continuation
        self.prompts = []

    def generate(self, prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=1024, stop=None, seed=0):
        self.prompts.append(prompts)
        assert stop and "```output" in stop
        out = []
        for p in prompts:
            if "```output" not in p:
                row = [Completion("Compute it.\n```python\nprint(6*7)\n```\n", [1] * 10, [0.0] * 10, "stop")] * n
            elif self.long:
                row = [Completion("x" * 50, [7] * 50, [0.0] * 50, "length")] * n
            else:
                row = [Completion("The answer is \\boxed{42}.", [2] * 5, [0.0] * 5, "stop")] * n
            out.append(row)
        return out


def test_tool_integrated_rounds_run_code_and_resume():
    ran = []

    def run_code(code, timeout):
        ran.append(code)
        return types.SimpleNamespace(status="ok", stdout="42\n", stderr="")

    gen = ToolGenerator()
    traces = eval_traces.generate_traces(gen, ["PROMPT"], n=2, temperature=0.7, top_p=1.0, max_new_tokens=100,
                                      stop=["```output"], seed=0, tool=True, max_tool_calls=3, run_code=run_code)
    t = traces[0][0]
    assert ran == ["print(6*7)\n", "print(6*7)\n"]
    assert t.tool_calls == 1 and t.num_tokens == 15 and t.finish_reason == "stop"
    assert "print(6*7)\n```\n```output\n42\n```\n" in t.text and t.text.endswith("\\boxed{42}.")
    assert gen.prompts[1][0].startswith("PROMPT") and gen.prompts[1][0].endswith("```output\n42\n```\n")


def test_tool_rounds_share_the_token_budget():
    gen = ToolGenerator(long_continuation=True)
    traces = eval_traces.generate_traces(
        gen, ["P"], n=1, temperature=0.0, top_p=1.0, max_new_tokens=30, stop=["```output"], seed=0, tool=True,
        max_tool_calls=3, run_code=lambda code, timeout: types.SimpleNamespace(status="error", stdout="",
                                                                               stderr="Traceback\nNameError: x"),
        decode=lambda ids: "y" * len(ids))
    t = traces[0][0]
    assert t.num_tokens == 30 and t.finish_reason == "length"
    assert "```output\nerror: NameError: x\n```" in t.text and t.text.endswith("y" * 20)


def test_trailing_code_only_when_the_text_ends_in_a_closed_python_block():
    assert eval_traces.trailing_code("a\n```python\nx=1\nprint(x)\n```\n") == "x=1\nprint(x)\n"
    assert eval_traces.trailing_code("```python\nx=1\n```\n```output\n1\n```\n") is None
    assert eval_traces.trailing_code("```python\nx=1\n```\nSo \\boxed{1}") is None
    assert eval_traces.trailing_code("```python\nx=1\n") is None


@pytest.mark.shared
@pytest.mark.parametrize("bench, file", [("gsm8k", "gsm8k_test.jsonl"), ("math500", "math500_test.jsonl")])
def test_cli_on_tiny_checkpoint_real_benchmarks(tmp_path, bench, file):
    """The real CLI (real generator and grader) on a tiny random checkpoint and the real benchmark files."""
    import torch

    from pipeline.models import build_model, save, train_tokenizer

    torch.manual_seed(0)
    bench_dir = shared_data("bench")
    texts = [json.loads(line).get("question") or json.loads(line)["problem"]
             for line in (bench_dir / file).read_text().splitlines()[:200]]
    tok = train_tokenizer(texts, vocab_size=600)
    model_dir = save(build_model(tok, hidden_size=32, num_layers=1, num_heads=2, max_position_embeddings=4096),
                     tok, tmp_path / "model")
    out = tmp_path / bench
    metrics = eval_run.main(["--model", str(model_dir), "--benchmark", bench, "--data", str(bench_dir / file),
                             "--limit", "3", "--n", "2", "--k", "1,2", "--max-new-tokens", "6", "--out", str(out)])
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    records = [json.loads(line) for line in (bench_dir / file).read_text().splitlines()[:3]]
    golds = [r["answer"] if bench == "math500" else r["answer"].split("####")[-1].strip() for r in records]
    # the first three problems, in file order, each with a greedy and two sampled completions
    assert [r["gold"] for r in rows] == [g for g in golds for _ in range(3)]
    assert [r["sample_index"] for r in rows] == [-1, 0, 1] * 3
    assert all(r["num_tokens"] <= 6 for r in rows)
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["greedy"] == metrics["greedy"] == pytest.approx(
        sum(r["correct"] for r in rows if r["sample_index"] == -1) / 3)
    assert on_disk["pass@k"]["1"] == pytest.approx(sum(r["correct"] for r in rows if r["sample_index"] >= 0) / 6)
    assert set(on_disk["pass@k"]) == {"1", "2"} and on_disk["data"]["num_problems"] == 3
    assert on_disk["grader_version"]
    if bench == "math500":
        assert set(on_disk["breakdown"]) == {"subject", "level"}


class FormatGenerator:
    """PoT: a program printing the answer; tool: a code block, then (after its output) a boxed answer."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.stops = []

    def generate(self, prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=1024, stop=None, seed=0):
        self.stops.append(stop)
        out = []
        for p in prompts:
            a, b = (int(x) for x in p.split("What is ")[1].split("?")[0].split("+"))
            if self.fmt == "pot":
                text = f"```python\nprint({a} + {b})\n```"
            elif "```output" not in p:
                text = f"Add them.\n```python\nprint({a} + {b})\n```\n"
            else:
                text = f"The answer is \\boxed{{{p.rsplit('```output', 1)[1].split()[0]}}}."
            out.append([Completion(text, [1] * 8, [0.0] * 8, "stop") for _ in range(n)])
        return out


@pytest.mark.parametrize("fmt", ["pot", "tool"])
def test_pot_and_tool_formats_run_code_end_to_end(monkeypatch, tiny_tokenizer_dir, tmp_path, fmt):
    gen = FormatGenerator(fmt)
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: gen)
    data = tmp_path / "add.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {a}+{b}?", "answer": f"#### {a + b}"}) + "\n"
                            for a, b in [(2, 3), (40, 2)]))
    out = tmp_path / fmt
    metrics = eval_run.main(["--model", str(tiny_tokenizer_dir), "--benchmark", "add", "--data", str(data),
                             "--format", fmt, "--n", "2", "--k", "1,2", "--out", str(out)])
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert metrics["greedy"] == 1.0 and metrics["pass@k"]["1"] == 1.0, rows[0]
    assert [r["pred"] for r in rows if r["sample_index"] == -1] == ["5", "42"]
    if fmt == "tool":
        assert all(r["tool_calls"] == 1 and "```output\n5\n```" in r["completion"] for r in rows[:3])
        assert all("```output" in s for s in gen.stops)
    # the isolation the sandbox applied to these programs is recorded beside the scores
    assert metrics["sandbox"]["required"] == "full" and metrics["sandbox"]["level"] in ("full", "partial", "none")
    assert json.loads((out / "metrics.json").read_text())["sandbox"] == metrics["sandbox"]


def test_code_is_refused_below_the_required_isolation(monkeypatch, tiny_tokenizer_dir, tmp_path):
    """eval.sandbox.require: a level the machine cannot give stops the run before anything is generated."""
    from grading import sandbox

    gen = FormatGenerator("pot")
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: gen)
    weaker = sandbox.Isolation(unshare=(), pid_namespace=False, net_namespace=False, mount_namespace=False,
                               separate_uid=False, landlock_abi=3, seccomp=True, python="python3", level="partial",
                               missing=("a per-run uid",))
    monkeypatch.setattr(sandbox, "isolation", lambda: weaker)
    data = tmp_path / "add.jsonl"
    data.write_text(json.dumps({"question": "What is 2+3?", "answer": "#### 5"}) + "\n")
    with pytest.raises(sandbox.SandboxError, match="below the required 'full'; missing: a per-run uid"):
        eval_run.main(["--model", str(tiny_tokenizer_dir), "--benchmark", "add", "--data", str(data),
                       "--format", "pot", "--n", "0", "--out", str(tmp_path / "o")])
    assert not gen.stops, "generation started although the sandbox was refused"


def test_per_checkpoint_overrides_and_seed_from_config(tmp_path):
    from pipeline.config import load_config

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("name: toy\nseed: 7\neval:\n  n: 8\n  k: [1, 8]\n"
                        "  per_checkpoint:\n    pretrain: {n: 0, prompt: plain, few_shot: 2}\n")
    cfg = load_config(cfg_path)
    settings = eval_settings.config_settings(cfg, "pretrain")
    assert (settings["n"], settings["prompt"], settings["few_shot"], settings["seed"]) == (0, "plain", 2, 7)
    assert eval_settings.config_settings(cfg, "rl")["n"] == 8
    args = eval_run.build_parser().parse_args(["--model", "m", "--benchmark", "gsm8k", "--out", "o",
                                               "--checkpoint", "pretrain"])
    s = eval_run.resolve_settings(args, cfg)
    assert (s.n, s.few_shot, s.prompt, s.seed) == (0, 2, "plain", 7)
    with pytest.raises(Exception, match="per_checkpoint"):
        load_config(cfg_path, ["eval.per_checkpoint.bogus={n: 1}"])


class CrashingGenerator(ScriptedGenerator):
    """The scripted model, killed after `survive` generate() calls."""

    def __init__(self, survive):
        super().__init__()
        self.survive = survive

    def generate(self, prompts, **kw):
        if len(self.calls) >= self.survive:
            raise KeyboardInterrupt("killed")
        return super().generate(prompts, **kw)


def test_killed_run_resumes_from_generated_chunks(monkeypatch, tiny_tokenizer_dir, data_file, tmp_path):
    args = ["--model", str(tiny_tokenizer_dir), "--benchmark", "toy", "--data", str(data_file), "--n", "4",
            "--k", "1,4", "--chunk-size", "2"]
    whole = ScriptedGenerator()
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: whole)
    eval_run.main(args + ["--out", str(tmp_path / "whole")])

    crash = CrashingGenerator(survive=3)  # chunk 0 (greedy + sampled) done, killed inside chunk 1
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: crash)
    with pytest.raises(KeyboardInterrupt):
        eval_run.main(args + ["--out", str(tmp_path / "resumed")])
    assert [p.name for p in (tmp_path / "resumed" / ".partial").iterdir()] == ["chunk-0000000.json"]
    assert not (tmp_path / "resumed" / "metrics.json").exists()

    again = ScriptedGenerator()
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: again)
    eval_run.main(args + ["--out", str(tmp_path / "resumed")])
    assert len(again.calls) == 2  # only chunk 1 was generated
    assert not (tmp_path / "resumed" / ".partial").exists()
    assert ((tmp_path / "whole" / "samples.jsonl").read_text()
            == (tmp_path / "resumed" / "samples.jsonl").read_text())
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "resumed"))
    for key in ("greedy", "pass@k", "maj@k", "status_counts"):
        assert a[key] == b[key]

    # a different setting invalidates the kept chunks
    crash = CrashingGenerator(survive=2)
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: crash)
    with pytest.raises(KeyboardInterrupt):
        eval_run.main(args + ["--out", str(tmp_path / "t"), "--temperature", "0.9"])
    again = ScriptedGenerator()
    monkeypatch.setattr("eval.run.build_generator", lambda backend, model, tok=None, **o: again)
    eval_run.main(args + ["--out", str(tmp_path / "t"), "--temperature", "0.5"])
    assert len(again.calls) == 4
