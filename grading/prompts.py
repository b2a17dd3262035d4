"""The one prompt builder, used by evaluation, SFT and RL, so every stage asks the same question.

Three response formats (DeepSeekMath §3.1 SFT data, §3.2 evaluation):

- `cot`: chain of thought; the question is followed by the paper's instruction
  "Please reason step by step, and put your final answer within \\boxed{}." (DeepSeekMath's evaluation
  scripts put it on the line after the question).
- `tool`: tool-integrated reasoning, natural language interleaved with ```python blocks whose output
  comes back in ```output blocks; DeepSeekMath's instruction for it is used verbatim.
- `pot`: program of thought; the completion is one program whose printed output is the answer. The
  paper does not print a zero-shot PoT instruction (it evaluates PoT few-shot), so the wording is ours.

Two layouts:

- chat: for instruct models, the tokenizer's own chat template (`tokenizer.apply_chat_template`) over
  one user turn "{question}\\n{instruction}" (few-shot exemplars become earlier user/assistant turns);
- plain: for base models, "Question: {question}\\n{instruction}\\nAnswer:" preceded by `few_shot`
  solved exemplars in the same layout, separated by blank lines. Generation stops at the next
  "Question:" (`stop_strings`).

`chat=None` picks chat when the tokenizer has a chat template. The default exemplars are our own short
problems (a mix of GSM8K-like and MATH-like), one list per format; callers may pass their own, e.g. solved
problems of the same distribution read with `load_exemplars` (the world's sft split).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.io import read_jsonl

FORMATS = ("cot", "pot", "tool")

COT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
TOOL_INSTRUCTION = ("Please integrate natural language reasoning with programs to solve the problem above, "
                    "and put your final answer within \\boxed{}.")
POT_INSTRUCTION = ("Please write a Python program to solve the problem above; "
                   "the program should print the final answer.")
INSTRUCTIONS = {"cot": COT_INSTRUCTION, "pot": POT_INSTRUCTION, "tool": TOOL_INSTRUCTION}

# Tool-integrated generation pauses here so the harness can run the code and append its output.
TOOL_OUTPUT_OPEN = "```output"
PLAIN_STOP = "\nQuestion:"

_Q1 = "A baker makes 24 muffins and sells them in boxes of 4. Each box costs $3. How much money does the baker make?"
_Q2 = "What is the value of $x$ if $3x - 7 = 11$?"
_Q3 = "Simplify $\\frac{12}{18} + \\frac{1}{6}$."
_Q4 = "Tom reads 15 pages a day. How many days does he need to finish a 120-page book?"

EXEMPLARS: dict[str, list[tuple[str, str]]] = {
    "cot": [
        (_Q1, "The baker fills 24 / 4 = 6 boxes. Each box costs $3, so the baker makes 6 * 3 = 18 dollars.\n"
              "The answer is $\\boxed{18}$."),
        (_Q2, "Add 7 to both sides: $3x = 18$. Divide by 3: $x = 6$.\nThe answer is $\\boxed{6}$."),
        (_Q3, "$\\frac{12}{18} = \\frac{2}{3} = \\frac{4}{6}$, so the sum is $\\frac{4}{6} + \\frac{1}{6} = "
              "\\frac{5}{6}$.\nThe answer is $\\boxed{\\frac{5}{6}}$."),
        (_Q4, "He needs 120 / 15 = 8 days.\nThe answer is $\\boxed{8}$."),
    ],
    "pot": [
        (_Q1, "```python\nboxes = 24 // 4\nprint(boxes * 3)\n```"),
        (_Q2, "```python\nfrom sympy import symbols, solve\nx = symbols('x')\nprint(solve(3*x - 7 - 11, x)[0])\n```"),
        (_Q3, "```python\nfrom fractions import Fraction\nprint(Fraction(12, 18) + Fraction(1, 6))\n```"),
        (_Q4, "```python\nprint(120 // 15)\n```"),
    ],
    "tool": [
        (_Q1, "The baker fills 24 / 4 boxes and earns $3 per box.\n```python\nprint(24 // 4 * 3)\n```\n"
              "```output\n18\n```\nThe answer is $\\boxed{18}$."),
        (_Q2, "Solve the linear equation with sympy.\n```python\nfrom sympy import symbols, solve\n"
              "x = symbols('x')\nprint(solve(3*x - 7 - 11, x))\n```\n```output\n[6]\n```\n"
              "The answer is $\\boxed{6}$."),
        (_Q3, "Add the fractions exactly.\n```python\nfrom fractions import Fraction\n"
              "print(Fraction(12, 18) + Fraction(1, 6))\n```\n```output\n5/6\n```\n"
              "The answer is $\\boxed{\\frac{5}{6}}$."),
        (_Q4, "Divide the pages by the pages per day.\n```python\nprint(120 // 15)\n```\n```output\n8\n```\n"
              "The answer is $\\boxed{8}$."),
    ],
}


def load_exemplars(path: str | Path, fmt: str, count: int) -> list[tuple[str, str]]:
    """The first `count` (question, response) pairs of a JSONL of solved problems whose records have
    `question` and a response in field `fmt` (the problem records of docs/CONTRACTS.md)."""
    _check_format(fmt)
    shots: list[tuple[str, str]] = []
    for rec in read_jsonl(path):  # a malformed line raises, naming the file and line
        if len(shots) >= count:
            break
        if isinstance(rec.get("question"), str) and isinstance(rec.get(fmt), str):
            shots.append((rec["question"], rec[fmt]))
    if len(shots) < count:
        raise ValueError(f"{path}: {count} few-shot exemplars with 'question' and {fmt!r} wanted, found {len(shots)}")
    return shots


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown prompt format {fmt!r}; expected one of {', '.join(FORMATS)}")


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None)) if tokenizer is not None else False


LAYOUTS = ("auto", "chat", "plain")


def use_chat(layout: str, tokenizer) -> bool:
    """The `prompt` / `prompt_layout` setting as build_prompt's `chat`: auto = the tokenizer's chat template
    when it has one, chat = always, plain = the plain Question/Answer layout."""
    if layout not in LAYOUTS:
        raise ValueError(f"prompt layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return has_chat_template(tokenizer) if layout == "auto" else layout == "chat"


def user_message(question: str, fmt: str) -> str:
    """The user's turn: the question, then the format's instruction on its own line."""
    _check_format(fmt)
    return f"{question.strip()}\n{INSTRUCTIONS[fmt]}"


def build_prompt(question: str, fmt: str = "cot", tokenizer=None, few_shot: int = 0, *,
                 chat: bool | None = None, exemplars: Sequence[tuple[str, str]] | None = None) -> str:
    """The prompt for `question` in format `fmt` (cot, pot, tool).

    chat=None: use the tokenizer's chat template when it has one, else the plain layout. `few_shot`
    solved exemplars (from `exemplars`, default `EXEMPLARS[fmt]`) precede the question.
    """
    _check_format(fmt)
    shots = list(EXEMPLARS[fmt] if exemplars is None else exemplars)
    if few_shot < 0 or few_shot > len(shots):
        raise ValueError(f"few_shot={few_shot}: between 0 and {len(shots)} exemplars are available for {fmt!r}")
    shots = shots[:few_shot]
    use_chat = has_chat_template(tokenizer) if chat is None else chat
    if use_chat:
        if not has_chat_template(tokenizer):
            raise ValueError("chat prompts need a tokenizer with a chat template")
        messages = []
        for q, a in shots:
            messages += [{"role": "user", "content": user_message(q, fmt)}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": user_message(question, fmt)})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    blocks = [f"Question: {user_message(q, fmt)}\nAnswer: {a}" for q, a in shots]
    blocks.append(f"Question: {user_message(question, fmt)}\nAnswer:")
    return "\n\n".join(blocks)


def stop_strings(fmt: str, tokenizer=None, *, chat: bool | None = None) -> list[str]:
    """Strings that end a generation round: the next plain-layout question; for `tool`, an output block."""
    _check_format(fmt)
    use_chat = has_chat_template(tokenizer) if chat is None else chat
    stops = [] if use_chat else [PLAIN_STOP]
    if fmt == "tool":
        stops.append(TOOL_OUTPUT_OPEN)
    return stops
