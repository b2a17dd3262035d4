"""Evaluation's generation: completions as `Trace`s, tool-integrated rounds, and resumable chunks.

`generate_traces` samples n completions per prompt through the one generation interface; in the
tool-integrated format a completion that ends in a ```python block has the block run in the sandbox and
its ```output appended (`format_tool_output`, the text SFT trains on: sft/formats.py), then generation
resumes within the same token budget. `ChunkCache` keeps generated chunks in OUT/.partial/ so a killed
evaluation resumes where it stopped (eval/run.py).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.io import fingerprint, write_json


@dataclass
class Trace:
    """One completion in the making (several rounds when tool calls are executed)."""

    text: str = ""
    num_tokens: int = 0
    finish_reason: str = "stop"
    tool_calls: int = 0


_TRAILING_CODE = re.compile(r"```python[ \t]*\n(.*?)```\s*$", re.DOTALL)


def trailing_code(text: str) -> str | None:
    """The code of a ```python block that ends the text (the model waits for its output), else None."""
    m = _TRAILING_CODE.search(text)
    return m.group(1) if m and "```" not in m.group(1) else None


def format_tool_output(result) -> str:
    """The ```output block appended after an executed code block (long outputs are shortened)."""
    out = (getattr(result, "stdout", "") or "").strip()
    if not out:
        err = (getattr(result, "stderr", "") or "").strip().splitlines()
        status = getattr(result, "status", "error")
        out = f"{status}: {err[-1]}" if err else str(status)
    if len(out) > 400:
        out = out[:200] + " ... " + out[-200:]
    return f"\n```output\n{out}\n```\n"


def generate_traces(generator, prompts: list[str], *, n: int, temperature: float, top_p: float,
                    max_new_tokens: int, stop: list[str], seed: int, tool: bool = False, max_tool_calls: int = 0,
                    run_code=None, code_timeout: float = 5.0, decode=None) -> list[list[Trace]]:
    """n completions per prompt (prompt-major). With `tool`, a completion that ends in a ```python block
    has the block run (`run_code`) and its ```output appended, then generation resumes; all rounds share
    the `max_new_tokens` budget (`decode(token_ids)` re-decodes a continuation cut to the budget).
    """
    outs = generator.generate(prompts, n=n, temperature=temperature, top_p=top_p,
                              max_new_tokens=max_new_tokens, stop=stop, seed=seed)
    traces = [[Trace(c.text, len(c.token_ids), c.finish_reason) for c in row] for row in outs]
    if not tool:
        return traces
    for rnd in range(1, max_tool_calls + 1):
        live = []
        for i, row in enumerate(traces):
            for t in row:
                code = trailing_code(t.text) if t.finish_reason == "stop" else None
                if code is None:
                    continue
                # The model wrote ```output (the stop string, cut from the text); the harness writes the
                # block as SFT taught it (sft/formats.py): the code fence, then ```output on the next line.
                t.text = t.text.rstrip() + format_tool_output(run_code(code, timeout=code_timeout))
                t.tool_calls += 1
                if t.num_tokens >= max_new_tokens:
                    t.finish_reason = "length"
                else:
                    live.append((i, t))
        if not live:
            break
        # One batched call for every resumed trace, with the largest remaining budget; a trace whose own
        # budget is smaller is cut back to it afterwards (tokens past it could not have been generated).
        budget = max(max_new_tokens - t.num_tokens for _, t in live)
        conts = generator.generate([prompts[i] + t.text for i, t in live], n=1, temperature=temperature,
                                   top_p=top_p, max_new_tokens=budget, stop=stop, seed=seed + rnd)
        for (_, t), (c,) in zip(live, conts):
            left = max_new_tokens - t.num_tokens
            if len(c.token_ids) > left:
                t.text += decode(c.token_ids[:left])
                t.num_tokens += left
                t.finish_reason = "length"
            else:
                t.text += c.text
                t.num_tokens += len(c.token_ids)
                t.finish_reason = c.finish_reason
    return traces


class ChunkCache:
    """Generated chunks kept in OUT/.partial/ so that a killed evaluation resumes where it stopped.

    Each file holds the traces of one chunk of problems under a key: a hash of everything that decides
    them (the run's fingerprint - model files, generation settings - plus the chunk's prompts and first
    index). A chunk whose key differs is generated again. The folder goes once both outputs are written.
    """

    def __init__(self, out: Path, fingerprint: str):
        self.dir = Path(out) / ".partial"
        self.fingerprint = fingerprint
        self.resumed = 0

    def key(self, prompts: list[str], start: int) -> str:
        return fingerprint(self.fingerprint, start, prompts)

    def load(self, start: int, key: str) -> tuple[list[Trace], list[list[Trace]]] | None:
        path = self.dir / f"chunk-{start:07d}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if data.get("key") != key:
            return None
        self.resumed += 1
        return [Trace(**t) for t in data["greedy"]], [[Trace(**t) for t in row] for row in data["sampled"]]

    def save(self, start: int, key: str, greedy: list[Trace], sampled: list[list[Trace]]) -> None:
        write_json(self.dir / f"chunk-{start:07d}.json", {
            "key": key, "greedy": [asdict(t) for t in greedy], "sampled": [[asdict(t) for t in row] for row in sampled]})

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
