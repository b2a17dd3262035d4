"""Find the final answer in a model completion (DeepSeekMath §3 CoT / PoT / tool-integrated formats).

Order of preference, as the CoT prompt asks for a boxed answer (paper §4, evaluation setup):
1. the last `\\boxed{...}` (balanced braces), `\\fbox{...}` or `\\boxed 5`;
2. the last "The answer is ..." / "Final Answer: ..." / "#### ..." statement;
3. the printed output of a program-of-thought block: the last line of the last ```output block;
4. the last number in the text.

A completion that is empty, or was cut off inside a box or a code block, has no answer (None):
the last number of a half-written program or box is not the model's answer.

Everything here is plain string scanning, linear in the completion length, so it is safe to run
in the calling process on hostile text (100k characters, unbalanced braces).
"""

from __future__ import annotations

import re

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is\b|:)\s*:?|####",
    re.IGNORECASE,
)
# A number as written in prose: sign, digits with optional thousands commas, decimals, a/b.
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?")
_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")


def extract_answer(completion: str | None) -> str | None:
    """Return the final answer of `completion` as written (LaTeX or plain text), or None."""
    if not completion or not completion.strip():
        return None
    if _has_unclosed_fence(completion):
        return None
    prose = _strip_code_blocks(completion)  # program text is not a statement of the answer
    boxed = last_boxed(prose)
    if boxed is _TRUNCATED:
        return None
    if boxed is not None:
        return boxed or None
    stated = _answer_statement(prose)
    if stated:
        return stated
    output = last_output(completion)
    if output:
        return output
    numbers = _NUMBER.findall(prose)
    return numbers[-1] if numbers else None


class _Truncated(str):
    """Marker: the last box was opened but never closed (the completion was cut off)."""


_TRUNCATED = _Truncated("")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` / `\\boxed x`; `_TRUNCATED` if unclosed."""
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    cmd = "\\boxed" if text.startswith("\\boxed", start) else "\\fbox"
    i = start + len(cmd)
    if i < len(text) and text[i] == " ":
        # `\boxed 5`: the argument is the next token, up to whitespace or `$`.
        rest = text[i + 1 :].lstrip()
        match = re.match(r"[^\s$]+", rest)
        return match.group(0).rstrip(".,") if match else None
    if i >= len(text) or text[i] != "{":
        return None
    content = balanced_group(text, i)
    return _TRUNCATED if content is None else content.strip()


def balanced_group(text: str, open_index: int) -> str | None:
    """The content of the `{...}` group opening at `open_index`; None if it never closes."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":  # an escaped brace `\{` does not count
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : i]
        i += 1
    return None


def _answer_statement(text: str) -> str | None:
    """What follows the last "The answer is" / "Final Answer:" / "####", to the sentence end."""
    last = None
    for match in _ANSWER_IS.finditer(text):
        last = match
    if last is None:
        return None
    rest = text[last.end() :].strip()
    if rest.startswith("$$"):
        end = rest.find("$$", 2)
        rest = rest[2:end] if end > 0 else rest[2:]
    elif rest.startswith("$"):
        end = rest.find("$", 1)
        rest = rest[1:end] if end > 0 else rest[1:]
    else:
        end = _SENTENCE_END.search(rest)
        rest = rest[: end.start()] if end else rest
    rest = rest.strip().rstrip(".").strip()
    return rest or None


def last_output(text: str) -> str | None:
    """The last non-empty line of the last ```output block (tool-integrated / PoT traces)."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() == "output"]
    if not blocks:
        return None
    lines = [ln.strip() for ln in blocks[-1].splitlines() if ln.strip()]
    return lines[-1] if lines else None


def last_python_block(text: str) -> str | None:
    """The code of the last closed ```python block, or None."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("python", "py")]
    return blocks[-1] if blocks else None


def has_explicit_answer(text: str) -> bool:
    """True if the completion states its answer (box, answer statement or output block)."""
    prose = _strip_code_blocks(text)
    return bool(last_boxed(prose)) or _answer_statement(prose) is not None or last_output(text) is not None


def _has_unclosed_fence(text: str) -> bool:
    return text.count("```") % 2 == 1


def _strip_code_blocks(text: str) -> str:
    """Prose only: numbers inside program text are not the model's stated answer."""
    return _FENCE.sub(lambda m: m.group(2) if m.group(1).lower() == "output" else " ", text)
