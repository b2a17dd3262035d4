"""Find the final answer in a model completion (DeepSeekMath §3 CoT / PoT / tool-integrated formats).

Order of preference, as the CoT prompt asks for a boxed answer (paper §4, evaluation setup):
1. an explicit final-answer marker: the last `\\boxed{...}` / `\\fbox{...}` / `\\boxed 5` (boxes that
   follow each other with only separators between them, `\\boxed{1} and \\boxed{2}`, form one answer
   `1, 2`), else the last "The answer is ..." / "Final Answer: ..." / "#### ..." statement;
2. the printed output of a program-of-thought block: the last line of the last ```output block;
3. the last math span: `$...$`, `$$...$$`, `\\[...\\]`, `\\(...\\)`;
4. a completion whose last line is a bare expression (`\\frac{10}{9}`, `x \\geq 5`, `1 000`): that line;
5. the last number in plain prose.

A number is never taken out of the middle of a LaTeX expression: `\\frac{10}{9}` is not 9 and
`$\\sqrt3$` is not 3. A completion that is empty, not a string, or was cut off inside a box or a code
block has no answer (None): the last number of a half-written program or box is not the answer.

`last_boxed` is the project's one `\\boxed` parser: the grader, the benchmark gold loader
(`grading.benchmarks`) and the SFT format checks (`sft.formats`) all call it.

Everything here is plain string scanning, linear in the completion length, and only the last
`MAX_COMPLETION_CHARS` characters are read, so it is safe to run in the calling process on hostile text.
"""

from __future__ import annotations

import re

MAX_COMPLETION_CHARS = 50_000  # the answer is at the end; a longer completion is read from its tail

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_ANSWER_IS = re.compile(r"(?:final answer|the answer|answer)\s*(?:is\b|:)\s*:?|####", re.IGNORECASE)
# A number in prose: not glued to a word, a LaTeX command or a brace on either side.
_PROSE_NUMBER = re.compile(
    r"(?<![\w\\{}^_.])(?:-\s?)?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?(?:/\d+)?|\.\d+)(?![\d{}^_\\]|[.,/]\d)"
)
_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")
# What may stand between two boxes of one answer: `, `, `and`, `\quad`, `\text{ and }`, math delimiters.
# Not `or`: `\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}` gives one value twice (MATH500).
_BOX_SEPARATOR = re.compile(r"(?:\s|[,;$.]|\\[\[\]()]|\\q?quad\b|\\[,;: ]|\\text\s*\{\s*(?:and|,)?\s*\}|and)*")
# A prose word: lower-case or capitalized, three letters or more (`AB`, `MBCN` are names of points).
_SPAN_SEPARATOR = re.compile(r"\s*(?:,|\band\b|,\s*and\b)\s*")
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Z]?[a-z]{2,}(?![A-Za-z])")
_LATEX_WORDS = re.compile(
    r"\\(?:text\w*|mathrm|mbox)\s*\{[^{}]*\}|\\(?:begin|end)\s*\{[^{}]*\}(?:\{[^{}]*\})?|\\[A-Za-z]+"
)


def extract_answer(completion: str | None) -> str | None:
    """Return the final answer of `completion` as written (LaTeX or plain text), or None."""
    if not isinstance(completion, str) or not completion.strip():
        return None
    text = completion[-MAX_COMPLETION_CHARS:]
    if _has_unclosed_fence(text):
        return None
    prose = _strip_code_blocks(text)  # program text is not a statement of the answer
    boxed = boxed_answer_run(prose)
    if boxed is _TRUNCATED:
        return None
    if boxed is not None:
        return _sentence_value(boxed) or None
    stated = _answer_statement(prose)
    if stated:
        return stated
    output = last_output(text)
    if output:
        return output
    return _unmarked_answer(prose)


class _Truncated(str):
    """Marker: the last box was opened but never closed (the completion was cut off)."""


_TRUNCATED = _Truncated("")


def _box_argument(text: str, start: int, limit: int) -> tuple[str | None, int]:
    """(content, end) of the box command starting at `start`; content None if it never closes
    before `limit`; `\\boxed 5` takes the next token."""
    i = _BOX.match(text, start).end()
    j = i
    while j < limit and text[j] in " \t":
        j += 1
    if j < limit and text[j] == "{":
        content = balanced_group(text, j, limit)
        if content is None:
            return None, limit
        return content.strip(), j + len(content) + 2
    if j > i:  # `\boxed 5`: the argument is the next token, up to whitespace or `$`
        m = re.compile(r"[^\s$]+").match(text, j, limit)
        if m:
            return m.group(0).rstrip(".,"), m.end()
    return "", i


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` / `\\boxed x`; None if there is none;
    `_TRUNCATED` (an empty string) if the last box was never closed."""
    starts = [m.start() for m in _BOX.finditer(text)]
    if not starts:
        return None
    content, _ = _box_argument(text, starts[-1], len(text))
    return _TRUNCATED if content is None else content


def boxed_answer(text: str) -> str | None:
    """The content of the last closed box, or None (no box, an empty box, or the last one unclosed)."""
    return last_boxed(text) or None


def boxed_answer_run(text: str) -> str | None:
    """Like `last_boxed`, but boxes joined only by separators (`\\boxed{1}, \\boxed{2}`) are one
    answer `1, 2`. Each earlier box is scanned only up to the next one, so this stays linear."""
    starts = [m.start() for m in _BOX.finditer(text)]
    if not starts:
        return None
    last, end = _box_argument(text, starts[-1], len(text))
    if last is None:
        return _TRUNCATED
    parts = [last]
    for k in range(len(starts) - 2, -1, -1):
        content, end = _box_argument(text, starts[k], starts[k + 1])
        if not content or not _BOX_SEPARATOR.fullmatch(text, end, starts[k + 1]):
            break
        parts.append(content)
    return ", ".join(reversed(parts)) if len(parts) > 1 else last


def balanced_group(text: str, open_index: int, limit: int | None = None) -> str | None:
    """The content of the `{...}` group opening at `open_index`; None if it never closes (before `limit`)."""
    depth = 0
    i = open_index
    n = len(text) if limit is None else min(limit, len(text))
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
    """What follows the last "The answer is" / "Final Answer:" / "####", to the sentence end.

    "Final Answer: The largest $n$ is 34." states 34: a statement that is itself a sentence gives
    what follows its last " is ", or else its last math span or plain number."""
    last = None
    for match in _ANSWER_IS.finditer(text):
        last = match
    if last is None:
        return None
    rest = text[last.end() :].strip()
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            rest = rest[len(opener) : end] if end > 0 else rest[len(opener) :]
            return rest.strip().rstrip(".").strip() or None
    end = _SENTENCE_END.search(rest)
    rest = rest[: end.start()] if end else rest
    rest = rest.strip().rstrip(".").strip().strip('"').strip()
    if not rest:
        return None
    if _is_prose(rest):
        tail = rest.rsplit(" is ", 1)
        if len(tail) == 2 and tail[1].strip():
            return _answer_statement_value(tail[1].strip())
        spans = math_spans(rest)
        if spans:
            return spans[-1]
        numbers = _PROSE_NUMBER.findall(rest)
        if numbers:
            return numbers[-1]
    return _answer_statement_value(rest)


def _sentence_value(answer: str) -> str:
    """A boxed sentence (`the number of students is 19`) states what follows its last " is "."""
    if " is " in answer and _is_prose(answer):
        tail = answer.rsplit(" is ", 1)[1].strip().rstrip(".").strip()
        return tail or answer
    return answer


def _answer_statement_value(rest: str) -> str:
    spans = math_spans(rest)
    if spans and rest.startswith(("$", "\\(", "\\[")):
        return spans[0]
    return rest


def last_output(text: str) -> str | None:
    """The last non-empty line of the last ```output block (tool-integrated / PoT traces)."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() == "output"]
    if not blocks:
        return None
    lines = [ln.strip() for ln in blocks[-1].splitlines() if ln.strip()]
    if not lines:
        return None
    # A printed Python list `[1, 2]` is a list of answers, not the closed interval [1, 2].
    return lines[-1][1:-1] if _PY_LIST.fullmatch(lines[-1]) else lines[-1]


_PY_LIST = re.compile(r"\[[^\[\]]*,[^\[\]]*\]")


def last_python_block(text: str) -> str | None:
    """The code of the last closed ```python block, or None."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("python", "py")]
    return blocks[-1] if blocks else None


def has_explicit_answer(text: str) -> bool:
    """True if the completion states its answer (box, answer statement or output block)."""
    prose = _strip_code_blocks(text[-MAX_COMPLETION_CHARS:])
    return bool(last_boxed(prose)) or _answer_statement(prose) is not None or last_output(text) is not None


# ------------------------------------------------------------------ math spans and prose


def math_spans(text: str) -> list[str]:
    """Contents of the math spans of `text` in order: `$$..$$`, `\\[..\\]` (may span lines), `$..$`,
    `\\(..\\)` (one line). A `$` that opens no math-looking span is a currency sign (`$5 and $3`)."""
    return [body for _, _, body in _math_spans_at(text)]


def _math_spans_at(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each math span (see `math_spans`)."""
    spans: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in "[(":
                closer = "\\]" if nxt == "[" else "\\)"
                end = text.find(closer, i + 2)
                if end < 0:
                    return spans
                body = text[i + 2 : end]
                if nxt == "[" or "\n" not in body.strip(" \t"):
                    spans.append((i, end + 2, body.strip()))
                i = end + 2
                continue
            i += 2  # `\$` and other escapes
            continue
        if c == "$":
            if text.startswith("$$", i):
                end = text.find("$$", i + 2)
                if end < 0:
                    return spans
                spans.append((i, end + 2, text[i + 2 : end].strip()))
                i = end + 2
                continue
            end = _next_dollar(text, i + 1)
            if end < 0:
                return spans
            body = text[i + 1 : end]
            if "\n" in body or _is_prose(body) or not body.strip():
                i = end  # this `$` was a currency sign; the next one may open a span
                continue
            spans.append((i, end + 1, body.strip()))
            i = end + 1
            continue
        i += 1
    return spans


def _next_dollar(text: str, start: int) -> int:
    i = text.find("$", start)
    while i > 0 and text[i - 1] == "\\":
        i = text.find("$", i + 1)
    return i


def _is_prose(s: str) -> bool:
    """Whether `s` has words outside LaTeX commands and `\\text{}` (two or more real words, or
    one word of three or more letters beside other text)."""
    bare = _LATEX_WORDS.sub(" ", s)
    words = _PROSE_WORD.findall(bare)
    if not words:
        return False
    if len(words) >= 2:
        return True
    return len(words[0]) >= 3 and bare.strip() != words[0] and not _PROSE_OK_WORD.fullmatch(words[0])


_PROSE_OK_WORD = re.compile(r"sin|cos|tan|cot|sec|csc|log|ln|exp|det|gcd|lcm|mod|max|min|arcsin|arccos|"
                            r"arctan|sinh|cosh|tanh|sqrt|pi|or|and|pct|percent|Rational|sqrt|oo|inf")


# A bare last line counts as an expression only with a digit, a command, an operator or bracket, or
# when it is one letter (a choice): `hmm` is not an answer.
_LONG_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")  # `AZYUK2A` is a word, not an expression
_MATHLIKE = re.compile(r"[\d\\=<>^_+\-*/()\[\]{}|]|^[A-Za-z]$")


def _unmarked_answer(prose: str) -> str | None:
    """Steps 3-5 of the module docstring: last math span, a bare expression line, a prose number."""
    spans = [s for s in _math_spans_at(prose) if s[2]]
    if spans:
        # `$1$ and $2$ and $3$`: spans joined only by separators are one answer
        parts = [spans[-1][2]]
        for k in range(len(spans) - 2, -1, -1):
            if not _SPAN_SEPARATOR.fullmatch(prose, spans[k][1], spans[k + 1][0]):
                break
            parts.append(spans[k][2])
        return ", ".join(reversed(parts))
    lines = [ln.strip() for ln in prose.strip().splitlines() if ln.strip()]
    last_line = lines[-1] if lines else ""
    if last_line and not _is_prose(last_line) and "$" not in last_line and _MATHLIKE.search(last_line) \
            and not any(not _PROSE_OK_WORD.fullmatch(w) for w in _LONG_WORD.findall(_LATEX_WORDS.sub(" ", last_line))):
        return last_line.rstrip(".").strip() or None
    numbers = _PROSE_NUMBER.findall(_without_math(prose))
    if not numbers:
        return None
    number = numbers[-1].replace(" ", "")
    # `2,74` in prose is a decimal comma: a list is written `2, 74`, a thousands group has 3 digits
    return re.sub(r"^(-?\d+),(\d{1,2}|\d{4,})$", r"\1.\2", number)


def _without_math(text: str) -> str:
    """Text before the first `\\(` / `\\[` (called when no span closed, so that one never closes):
    the numbers of an unclosed formula are not prose."""
    dollar = re.search(r"\$\s", text)  # a `$` before a space opens a formula, a currency `$` a number
    cut = min((i for i in (text.find("\\("), text.find("\\["), dollar.start() if dollar else -1) if i >= 0),
              default=len(text))
    return text[:cut]


def _has_unclosed_fence(text: str) -> bool:
    return text.count("```") % 2 == 1


def _strip_code_blocks(text: str) -> str:
    """Prose only: numbers inside program text are not the model's stated answer."""
    return _FENCE.sub(lambda m: m.group(2) if m.group(1).lower() == "output" else " ", text)
