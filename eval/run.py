"""`python -m eval`: evaluate one checkpoint on one benchmark (DeepSeekMath §3.2, §4.3, Figure 7).

    python -m eval --model results/tiny/rl/model --benchmark math500 --data ../shared/data/bench/math500_test.jsonl \
        --n 64 --k 1,4,16,64 --temperature 0.7 --format cot --out results/tiny/eval/rl/math500

Steps: load the benchmark, build one prompt per problem (grading.prompts), generate one greedy completion
(temperature 0) and n sampled ones per problem (pipeline.generation), grade every completion with the
shared grader (grading.grader.grade_many), group each problem's sampled answers into equivalence classes
(grading.grader.group_equivalent), and write

- `samples.jsonl`: one row per completion: `problem_id`, `sample_index` (-1 = the greedy one),
  `completion`, `pred`, `correct`, `status`, plus `vote_class`, `finish_reason`, `num_tokens`, `gold`
  and the problem's `subject` / `level` where it has them, so every metric can be recomputed offline
  with `eval.metrics.metrics_from_samples`;
- `metrics.json`: `greedy`, `pass@k`, `maj@k` (K as a string -> fraction), `n`, the exact settings
  (model, benchmark, data, k, temperature, top_p, seed, format, prompt layout, max_new_tokens, grader
  version), status counts and, where problems have subjects/levels (MATH), the breakdown.

Generated chunks are kept in OUT/.partial/ until both files are written, so a killed run resumes
(`ChunkCache`) and ends with the same files as an uninterrupted one.

A completion cut at `max_new_tokens` ("length") counts only with an explicitly stated answer (the
grader's `truncated=True`), never with whatever number it happened to end on (status `truncated`).
Tool-integrated (`--format tool`) generation runs the model's ```python blocks in the sandbox and
appends their ```output, as the paper's tool-integrated evaluation does, for up to `max_tool_calls`
rounds within the same `max_new_tokens` budget.

Settings come from the command line, else from the config's `eval:` section (`--config`), else defaults.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from eval.metrics import GREEDY_INDEX, NO_ANSWER, metrics_from_samples
from eval.settings import DEFAULTS, config_settings, parse_k
from eval.traces import ChunkCache, Trace, generate_traces
from grading import sandbox
from grading.benchmarks import FieldMap, HubSpec, load_benchmark
from grading.grader import GRADER_VERSION, grade_many, group_equivalent
from grading.prompts import FORMATS, build_prompt, load_exemplars, stop_strings, use_chat
from pipeline.config import check_no_placeholders, load_config, schema_defaults, set_threads, setup_logging
from pipeline.generation import BACKENDS, build_generator, resolve_backend
from pipeline.io import fingerprint, write_json, write_jsonl, write_run_record
from pipeline.models import load_tokenizer

log = logging.getLogger("eval")

@dataclass
class EvalSettings:
    model: str
    benchmark: str
    out: str
    data: str | None
    schema: str
    fields: dict | None
    hub: dict | None
    n: int
    k: list[int]
    temperature: float
    top_p: float
    format: str
    max_new_tokens: int
    few_shot: int
    few_shot_file: str | None  # JSONL of solved problems to take exemplars from (else grading.prompts')
    prompt: str  # auto | chat | plain
    limit: int | None
    seed: int
    chunk_size: int  # problems per generate() call (progress, and the unit of the per-call seed)
    grader_workers: int
    grader_timeout: float
    code_timeout: float  # seconds per program run (PoT grading, tool-integrated execution)
    maj_subsets: int
    max_tool_calls: int
    backend: str = "hf"
    generator_options: dict = field(default_factory=dict)
    # lowest sandbox isolation accepted for model-written code (eval.sandbox.require; PoT and tool formats)
    sandbox_require: str = schema_defaults("eval.sandbox")["require"]

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {FORMATS}, got {self.format!r}")
        if self.prompt not in ("auto", "chat", "plain"):
            raise ValueError(f"--prompt must be auto, chat or plain, got {self.prompt!r}")
        if self.n < 0:
            raise ValueError(f"--n must be >= 0, got {self.n}")
        bad = [k for k in self.k if k < 1 or k > self.n]
        if self.n and bad:
            raise ValueError(f"--k values must be in 1..n={self.n}, got {bad}")
        if self.temperature < 0 or not (0 < self.top_p <= 1):
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")
        if self.max_new_tokens < 1 or self.chunk_size < 1:
            raise ValueError("--max-new-tokens and --chunk-size must be >= 1")


# ---------------------------------------------------------------------------------------------------
# Settings: command line > config `eval:` section > defaults


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="save_pretrained folder or hub id")
    p.add_argument("--benchmark", required=True,
                   help="gsm8k, math, math500, or a name from the config's eval.benchmarks (else any name with --data)")
    p.add_argument("--data", help="local benchmark file (.jsonl, .jsonl.gz, .parquet); else config, else the hub")
    p.add_argument("--schema", choices=["auto", "gsm8k", "math", "math500", "problem"],
                   help="record schema of --data (default: detected from the first record)")
    p.add_argument("--fields", help="field map for other files: question=KEY,answer=KEY[,id=KEY,subject=KEY,"
                                    "level=KEY,answer_format=plain|gsm8k|boxed]")
    p.add_argument("--out", required=True, help="output folder for samples.jsonl and metrics.json")
    p.add_argument("--n", type=int, help=f"sampled completions per problem (0: greedy only) [{DEFAULTS['n']}]")
    p.add_argument("--k", help=f"comma-separated K for Pass@K / Maj@K [{','.join(map(str, DEFAULTS['k']))}]")
    p.add_argument("--temperature", type=float, help=f"sampling temperature for the n samples [{DEFAULTS['temperature']}]")
    p.add_argument("--top-p", type=float, help=f"nucleus sampling [{DEFAULTS['top_p']}]")
    p.add_argument("--format", choices=FORMATS, help=f"cot, pot or tool [{DEFAULTS['format']}]")
    p.add_argument("--max-new-tokens", type=int, help=f"per completion [{DEFAULTS['max_new_tokens']}]")
    p.add_argument("--few-shot", type=int, help=f"solved exemplars before the question [{DEFAULTS['few_shot']}]")
    p.add_argument("--few-shot-file", help="JSONL of solved problems (question + cot/pot/tool) to take the "
                                           "exemplars from [grading.prompts' own]")
    p.add_argument("--prompt", choices=["auto", "chat", "plain"],
                   help="prompt layout: chat template, plain Question/Answer, or auto (chat if the tokenizer has one)")
    p.add_argument("--limit", type=int, help="evaluate only the first N problems")
    p.add_argument("--seed", type=int, help="sampling seed (also seeds the Maj@K subsets) [0]")
    p.add_argument("--backend", choices=list(BACKENDS),
                   help="generation backend; auto = vllm with a CUDA GPU and vllm installed, else hf "
                        "[config generation.backend or auto]")
    p.add_argument("--chunk-size", type=int, help=f"problems per generation call [{DEFAULTS['chunk_size']}]")
    p.add_argument("--grader-workers", type=int, help=f"processes for grading [{DEFAULTS['grader_workers']}]")
    p.add_argument("--grader-timeout", type=float, help=f"seconds per answer comparison [{DEFAULTS['grader_timeout']}]")
    p.add_argument("--code-timeout", type=float, help=f"seconds per program run (PoT, tool-integrated) [{DEFAULTS['code_timeout']}]")
    p.add_argument("--sandbox-require", choices=["full", "partial", "none"],
                   help="lowest sandbox isolation accepted for PoT / tool code [config eval.sandbox.require or "
                        f"{schema_defaults('eval.sandbox')['require']}]")
    p.add_argument("--max-tool-calls", type=int, help=f"code blocks run per tool-integrated completion [{DEFAULTS['max_tool_calls']}]")
    p.add_argument("--maj-subsets", type=int, help=f"random K-subsets averaged for Maj@K when n > K [{DEFAULTS['maj_subsets']}]")
    p.add_argument("--config", help="experiment config; its eval: and generation: sections give the defaults")
    p.add_argument("--checkpoint", help="stage name (pretrain, sft, rl, ...): apply the config's eval.per_checkpoint "
                                        "overrides for it")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (with --config), e.g. --set eval.n=8")
    p.add_argument("--threads", type=int, help="torch threads [config threads or 1]")
    p.add_argument("--log-level", default="INFO")
    return p


def resolve_settings(args: argparse.Namespace, cfg: dict | None) -> EvalSettings:
    """Merge the command line, the config (`config_settings`) and the defaults into one EvalSettings."""
    values = config_settings(cfg, getattr(args, "checkpoint", None))
    for key in DEFAULTS:
        cli = getattr(args, key, None)
        if cli is not None:
            values[key] = parse_k(cli) if key == "k" else cli

    bench = dict(((cfg or {}).get("eval") or {}).get("benchmarks", {}).get(args.benchmark) or {})
    data = args.data or bench.get("data")
    hub = None
    if not data and bench.get("hub"):
        hub = {"path": bench["hub"], "configs": list(bench.get("hub_configs") or [None]),
               "split": bench.get("split", "test"), "schema": bench.get("schema", "auto")}
    fields = FieldMap.parse(args.fields).__dict__ if args.fields else bench.get("fields")
    gen_opts = dict((cfg or {}).get("generation") or {})
    backend = resolve_backend(args.backend or gen_opts.get("backend") or "auto")
    gen_opts.pop("backend", None)  # the rest (batch_size, dtype, vLLM memory, ...) goes to build_generator
    require = getattr(args, "sandbox_require", None) or (((cfg or {}).get("eval") or {}).get("sandbox") or {}).get(
        "require") or schema_defaults("eval.sandbox")["require"]
    settings = EvalSettings(model=str(args.model), benchmark=args.benchmark, out=str(args.out),
                            sandbox_require=require,
                            data=str(data) if data else None, schema=args.schema or bench.get("schema", "auto"),
                            fields=fields, hub=hub, backend=backend, generator_options=gen_opts, **values)
    settings.validate()
    return settings


def run_fingerprint(s: EvalSettings) -> str:
    """Hash of what decides the generated text: the model's files and the generation settings."""
    model = Path(s.model)
    files = sorted((str(f.relative_to(model)), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in model.rglob("*") if f.is_file()) if model.is_dir() else []
    gen = {k: getattr(s, k) for k in ("n", "temperature", "top_p", "format", "max_new_tokens", "few_shot",
                                      "few_shot_file", "prompt",
                                      "seed", "max_tool_calls", "code_timeout", "backend", "generator_options")}
    return fingerprint(s.model, files, gen)


# ---------------------------------------------------------------------------------------------------
# Grading


def grader_version() -> str:
    """The shared grader's version (a hash of its sources), recorded beside every score."""
    return str(GRADER_VERSION)


def grade_traces(traces: list[Trace], golds: list[str], *, fmt: str, workers: int, timeout: float,
                 code_timeout: float, ids: list | None = None) -> list[dict]:
    """Grade completions with the shared grader (grading.grader.grade_many).

    A completion cut at max_new_tokens is graded with `truncated=True`: the grader then accepts only an
    explicitly stated answer (a box, an answer statement, an output block), never the last number of an
    unfinished solution; its "no_answer" verdicts are reported with status "truncated". PoT completions
    are graded by running their program (`execute_code`).
    """
    truncated = [t.finish_reason == "length" for t in traces]
    verdicts = grade_many([(t.text, g) for t, g in zip(traces, golds)], workers=workers, timeout=timeout,
                          execute_code=fmt == "pot", truncated=truncated, code_timeout=code_timeout, ids=ids)
    out = []
    for v, cut in zip(verdicts, truncated):
        status = "truncated" if cut and v.status == "no_answer" else str(v.status)
        out.append({"pred": v.pred, "correct": bool(v.correct), "status": status})
    return out


# ---------------------------------------------------------------------------------------------------


def run_eval(s: EvalSettings) -> dict:
    """Evaluate `s.model` on `s.benchmark`; write samples.jsonl, metrics.json and run.json into `s.out`."""
    t0 = time.perf_counter()
    bench = load_benchmark(s.benchmark, data=s.data, hub=HubSpec(**{**s.hub, "configs": tuple(s.hub["configs"])})
                           if s.hub else None, schema="auto" if s.fields else s.schema, fields=s.fields, limit=s.limit)
    problems = bench.problems
    tokenizer = load_tokenizer(s.model)
    chat = use_chat(s.prompt, tokenizer)
    exemplars = load_exemplars(s.few_shot_file, s.format, s.few_shot) if s.few_shot and s.few_shot_file else None
    prompts = [build_prompt(p.question, s.format, tokenizer, s.few_shot, chat=chat, exemplars=exemplars)
               for p in problems]
    stop = stop_strings(s.format, tokenizer, chat=chat)
    log.info("%s on %s: %d problems, n=%d, T=%.2f, format=%s, %s prompts, %d-shot", s.model, s.benchmark,
             len(problems), s.n, s.temperature, s.format, "chat" if chat else "plain", s.few_shot)
    runs_code = s.format in ("pot", "tool")
    if runs_code:  # refuse model-written code below the required isolation before generating anything
        sandbox.configure(require=s.sandbox_require)
        sandbox.run_code("pass", timeout=10)  # raises SandboxError naming the missing layer
    generator = build_generator(s.backend, s.model, tokenizer, **s.generator_options)
    greedy: list[Trace] = []
    sampled: list[list[Trace]] = []
    gen_opts = dict(top_p=s.top_p, max_new_tokens=s.max_new_tokens, stop=stop, tool=s.format == "tool",
                    max_tool_calls=s.max_tool_calls, run_code=sandbox.run_code if s.format == "tool" else None, code_timeout=s.code_timeout,
                    decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    cache = ChunkCache(Path(s.out), run_fingerprint(s))
    t_gen = time.perf_counter()
    for start in tqdm(range(0, len(prompts), s.chunk_size), desc=f"generate {s.benchmark}", unit="chunk"):
        chunk = prompts[start:start + s.chunk_size]
        key = cache.key(chunk, start)
        done = cache.load(start, key)
        if done is None:
            g = [row[0] for row in generate_traces(generator, chunk, n=1, temperature=0.0, seed=s.seed + start,
                                                   **{**gen_opts, "top_p": 1.0})]
            smp = generate_traces(generator, chunk, n=s.n, temperature=s.temperature, seed=s.seed + start,
                                  **gen_opts) if s.n else []
            cache.save(start, key, g, smp)
            done = (g, smp)
        greedy += done[0]
        sampled += done[1]
    gen_s = time.perf_counter() - t_gen
    if cache.resumed:
        log.info("resumed %d generated chunks from %s", cache.resumed, cache.dir)

    # Grade everything in one call (the grader parallelises), greedy first then samples problem-major.
    flat = greedy + [t for row in sampled for t in row]
    golds = [p.answer for p in problems] + [p.answer for p in problems for _ in range(s.n)]
    ids = [p.problem_id for p in problems] + [p.problem_id for p in problems for _ in range(s.n)]
    verdicts = grade_traces(flat, golds, fmt=s.format, workers=s.grader_workers, timeout=s.grader_timeout, ids=ids,
                            code_timeout=s.code_timeout)

    rows = []
    for i, p in enumerate(problems):
        meta = {k: v for k, v in (("subject", p.subject), ("level", p.level)) if v is not None}
        rows.append(_row(p, GREEDY_INDEX, greedy[i], verdicts[i], None, meta))
        row_verdicts = verdicts[len(problems) + i * s.n: len(problems) + (i + 1) * s.n]
        classes = group_equivalent([v["pred"] for v in row_verdicts], timeout=s.grader_timeout,
                                   workers=s.grader_workers) if s.n else []
        for j in range(s.n):
            rows.append(_row(p, j, sampled[i][j], row_verdicts[j], int(classes[j]), meta))

    out = Path(s.out)
    write_jsonl(out / "samples.jsonl", rows)
    scores = metrics_from_samples(rows, s.k if s.n else [], seed=s.seed, maj_subsets=s.maj_subsets)
    settings = {k: v for k, v in asdict(s).items() if k != "out"}
    metrics = {
        # the numbers
        "greedy": scores.pop("greedy"), "pass@k": scores.pop("pass@k"), "maj@k": scores.pop("maj@k"),
        # the exact settings behind them
        "model": s.model, "benchmark": s.benchmark, "n": scores.pop("n"), "k": scores.pop("k"),
        "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed, "format": s.format,
        "prompt_layout": "chat" if chat else "plain", "few_shot": s.few_shot, "few_shot_file": s.few_shot_file,
        "max_new_tokens": s.max_new_tokens,
        "stop": stop, "backend": s.backend, "grader_version": grader_version(), "data": bench.summary(),
        # diagnostics, status counts, MATH breakdown
        **scores,
        "truncated_fraction": sum(t.finish_reason == "length" for t in flat) / max(1, len(flat)),
        "mean_completion_tokens": sum(t.num_tokens for t in flat) / max(1, len(flat)),
        "generation_s": round(gen_s, 2), "wall_s": round(time.perf_counter() - t0, 2),
        # the isolation the sandbox actually applied to the programs of this run (PoT, tool)
        "sandbox": sandbox.isolation_summary() if runs_code else None,
        "settings": settings,
    }
    write_json(out / "metrics.json", metrics)
    write_run_record(out, "eval", settings=settings)
    cache.clear()
    log.info("%s/%s: greedy %.3f  pass@k %s  maj@k %s  (%d problems, %.0fs)", s.model, s.benchmark,
             metrics["greedy"] or 0.0, _fmt(metrics["pass@k"]), _fmt(metrics["maj@k"]), len(problems),
             metrics["wall_s"])
    return metrics


def _row(p, index: int, t: Trace, verdict: dict, vote_class: int | None, meta: dict) -> dict:
    if vote_class is None and index != GREEDY_INDEX:
        vote_class = NO_ANSWER
    return {"problem_id": p.problem_id, "sample_index": index, "completion": t.text, "pred": verdict["pred"],
            "correct": verdict["correct"], "status": verdict["status"], "vote_class": vote_class,
            "finish_reason": t.finish_reason, "num_tokens": t.num_tokens, "tool_calls": t.tool_calls,
            "gold": p.answer, **meta}


def _fmt(d: dict) -> str:
    return " ".join(f"{k}:{v:.3f}" for k, v in d.items())


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(args.config, args.overrides) if args.config else None
    if cfg is not None:
        check_no_placeholders(cfg, args.config, ("eval",))
    if args.overrides and cfg is None:
        raise SystemExit("--set needs --config")
    set_threads(args.threads if args.threads is not None else (cfg or {}).get("threads", 1))
    return run_eval(resolve_settings(args, cfg))
