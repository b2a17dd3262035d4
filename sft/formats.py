"""The three SFT response formats of DeepSeekMath (paper §3.1) and which of their characters carry loss.

The prompt side is never built here: `grading.prompts.build_prompt(question, fmt, tokenizer)` is the one
prompt builder, so SFT trains on exactly the prompts that evaluation and RL ask. With our tokenizers
that is the chat template saved in the tokenizer (`pipeline.models.CHAT_TEMPLATE`):

    <|user|>\\n{question}\\n{instruction of fmt}\\n<|assistant|>\\n          <- prompt (no loss)
    {response}<|eos|>                                                      <- loss

The response templates (what `response` must look like; `check_response` enforces it):

- ``cot``  chain of thought in prose/LaTeX that ends in the final answer inside ``\\boxed{}``:
           ``... so he has 5 + 3 = 8 apples.\\nThe answer is \\boxed{8}``
- ``pot``  program of thought: exactly one fenced python block whose printed output is the answer
           (graded by running it in eval's sandbox): ``\\`\\`\\`python\\nans = 5 + 3\\nprint(ans)\\n\\`\\`\\```
- ``tool`` tool-integrated: reasoning interleaved with ``\\`\\`\\`python`` blocks, each followed by an
           ``\\`\\`\\`output`` block holding the real execution result, ending in ``\\boxed{}``:
           ``Add them.\\n\\`\\`\\`python\\nprint(5 + 3)\\n\\`\\`\\`\\n\\`\\`\\`output\\n8\\n\\`\\`\\`\\nThe answer is \\boxed{8}``

Loss on a tool response: at inference the model writes ``\\`\\`\\`output`` (a stop string,
`grading.prompts.TOOL_OUTPUT_OPEN`) and the harness appends the execution result and the closing fence.
So the model is trained to write the opener but not what follows it: the characters from the end of
``\\`\\`\\`output`` through its closing ``\\`\\`\\``` and the newline after it are masked
(`masked_spans`), exactly the text eval's harness appends (`eval.traces.format_tool_output`).
"""

from __future__ import annotations

import re

from grading.answer_extraction import boxed_answer
from grading.prompts import FORMATS, TOOL_OUTPUT_OPEN

__all__ = ["FORMATS", "TOOL_OUTPUT_OPEN", "check_response", "masked_spans", "gsm8k_solution_to_cot",
           "boxed_answer"]

_PYTHON_BLOCK = re.compile(r"```python[ \t]*\n(.*?)\n?```", re.DOTALL)
# An output block: the opener, then what the eval harness writes after it - the content, the closing
# fence and the newline after it (eval.traces.format_tool_output).
_OUTPUT_BLOCK = re.compile(re.escape(TOOL_OUTPUT_OPEN) + r"(.*?```\n?)", re.DOTALL)
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def check_response(fmt: str, response: str) -> str | None:
    """Why `response` does not follow the template of `fmt`, or None when it does."""
    if fmt not in FORMATS:
        return f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})"
    if not isinstance(response, str) or not response.strip():
        return "empty response"
    if fmt == "cot":
        return None if boxed_answer(response) else "CoT response has no \\boxed{} answer"
    if fmt == "pot":
        blocks = _PYTHON_BLOCK.findall(response)
        if len(blocks) != 1:
            return f"PoT response must be exactly one ```python block, found {len(blocks)}"
        if "print(" not in blocks[0]:
            return "PoT program never prints its answer"
        return None
    # tool
    codes = list(_PYTHON_BLOCK.finditer(response))
    outputs = list(_OUTPUT_BLOCK.finditer(response))
    if not codes:
        return "tool response has no ```python block"
    if len(outputs) != len(codes):
        return f"tool response has {len(codes)} python blocks but {len(outputs)} output blocks"
    for code, out in zip(codes, outputs):
        if not response[code.end():out.start()].strip() == "":
            return "tool response: an ```output block must follow its ```python block directly"
    if not boxed_answer(response[outputs[-1].end():]):
        return "tool response has no \\boxed{} answer after its last output block"
    return None


def masked_spans(fmt: str, response: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of `response` that carry no loss: tool outputs (see module doc)."""
    if fmt != "tool":
        return []
    return [m.span(1) for m in _OUTPUT_BLOCK.finditer(response)]


def gsm8k_solution_to_cot(solution: str) -> str:
    """A GSM8K train solution (``... <<4*3=12>>12 ...\\n#### 12``) as a CoT response ending in \\boxed{}.

    Lets a user plug the real GSM8K train set (`sft.data` with ``cot_style: gsm8k``): the calculator
    annotations are dropped and the ``#### N`` line becomes ``The answer is \\boxed{N}``.
    """
    if "####" not in solution:
        raise ValueError("GSM8K solution has no '#### answer' line")
    body, answer = solution.rsplit("####", 1)
    answer = answer.strip().replace(",", "")
    if not answer:
        raise ValueError("GSM8K solution has an empty '####' answer")
    body = _CALCULATOR.sub("", body).strip()
    return f"{body}\nThe answer is \\boxed{{{answer}}}"
