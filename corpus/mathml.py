"""Presentation MathML -> LaTeX, so math written as `<math>` survives text extraction (§2.1).

The paper mines pages whose math must reach the corpus as LaTeX; many pages (Wikipedia, MathJax 3
assistive markup, lecture notes exported from Word) carry MathML instead. No maintained Python
package converts MathML to LaTeX (the PyPI ones are unmaintained XSLT wrappers), so this is a small
recursive converter over the resiliparse DOM. It covers the presentation elements that occur on
real pages (tokens, rows, scripts, fractions, roots, fences, under/over, tables) and prefers an
`<annotation encoding="application/x-tex">` when the page ships the original TeX.
"""

from __future__ import annotations

import re

GREEK = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon", "ϵ": r"\epsilon",
    "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ϑ": r"\vartheta", "ι": r"\iota", "κ": r"\kappa",
    "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi", "π": r"\pi", "ρ": r"\rho", "σ": r"\sigma",
    "τ": r"\tau", "υ": r"\upsilon", "φ": r"\phi", "ϕ": r"\phi", "χ": r"\chi", "ψ": r"\psi",
    "ω": r"\omega", "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi",
    "Π": r"\Pi", "Σ": r"\Sigma", "Υ": r"\Upsilon", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega",
}
SYMBOLS = {
    "×": r"\times", "÷": r"\div", "±": r"\pm", "∓": r"\mp", "≤": r"\le", "≥": r"\ge", "≠": r"\neq",
    "≈": r"\approx", "∞": r"\infty", "→": r"\to", "←": r"\leftarrow", "⇒": r"\Rightarrow",
    "⇔": r"\iff", "↦": r"\mapsto", "∈": r"\in", "∉": r"\notin", "⊂": r"\subset", "⊆": r"\subseteq",
    "⊃": r"\supset", "⊇": r"\supseteq", "∪": r"\cup", "∩": r"\cap", "∑": r"\sum", "∏": r"\prod",
    "∫": r"\int", "∬": r"\iint", "∮": r"\oint", "⋅": r"\cdot", "·": r"\cdot", "∗": "*", "−": "-",
    "∂": r"\partial", "∇": r"\nabla", "∀": r"\forall", "∃": r"\exists", "¬": r"\neg", "∧": r"\wedge",
    "∨": r"\vee", "≡": r"\equiv", "∼": r"\sim", "≅": r"\cong", "∝": r"\propto", "∅": r"\emptyset",
    "…": r"\ldots", "⋯": r"\cdots", "′": "'", "″": "''", "°": r"^\circ", "∘": r"\circ", "⊥": r"\perp",
    "∠": r"\angle", "△": r"\triangle", "⟨": r"\langle", "⟩": r"\rangle", "⌊": r"\lfloor",
    "⌋": r"\rfloor", "⌈": r"\lceil", "⌉": r"\rceil", "ℝ": r"\mathbb{R}", "ℕ": r"\mathbb{N}",
    "ℤ": r"\mathbb{Z}", "ℚ": r"\mathbb{Q}", "ℂ": r"\mathbb{C}", "\u2061": "", "\u2062": "",
    "\u2063": ",", "\u00a0": " ", "{": r"\{", "}": r"\}", "%": r"\%", "#": r"\#", "&": r"\&",
    **GREEK,
}
FUNCTIONS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "lg", "exp", "lim", "max", "min", "sup", "inf", "det", "gcd", "deg", "dim", "ker",
}
ACCENTS = {
    "^": r"\hat", "ˆ": r"\hat", "¯": r"\overline", "‾": r"\overline", "_": r"\overline", "→": r"\vec",
    "⃗": r"\vec", "~": r"\tilde", "˜": r"\tilde", "˙": r"\dot", "¨": r"\ddot", "⏞": r"\overbrace",
    "⏟": r"\underbrace",
}
BIG_OPERATORS = {r"\sum", r"\prod", r"\int", r"\iint", r"\oint", r"\lim", r"\max", r"\min", r"\sup", r"\inf"}
TEX_ENCODINGS = ("application/x-tex", "application/x-latex", "text/x-tex", "tex", "latex")
# A command (`\\sin`) or a one-character script (`^n`) that would swallow a following letter.
_NEEDS_SPACE = re.compile(r"\\[A-Za-z]+$|[\^_][A-Za-z0-9]$")


def mathml_to_latex(math) -> str:
    """LaTeX for a `<math>` element (resiliparse ElementNode), without `$` delimiters."""
    tex = tex_annotation(math)
    if tex is None:
        tex = (math.get_attribute("alttext") or "").strip() or _convert(math)
    return tex.strip()


def tex_annotation(node) -> str | None:
    """The original TeX if the page ships it (`<annotation encoding="application/x-tex">`)."""
    for ann in node.query_selector_all("annotation"):
        if (ann.get_attribute("encoding") or "").lower() in TEX_ENCODINGS and (ann.text or "").strip():
            return ann.text.strip()
    return None


def _chars(text: str) -> str:
    return "".join(SYMBOLS.get(c, c) for c in text)


def _join(parts: list[str]) -> str:
    """Concatenate LaTeX pieces, adding a space where a command would run into a letter (`\\sin x`)."""
    out = ""
    for p in parts:
        if not p:
            continue
        if out and _NEEDS_SPACE.search(out) and p[0].isalnum():
            out += " "
        out += p
    return out


def _group(s: str) -> str:
    """Brace a script argument unless it is a single character or a single command."""
    s = s.strip()
    return s if len(s) == 1 or re.fullmatch(r"\\[A-Za-z]+", s) else "{" + s + "}"


def _convert(node) -> str:
    tag = (node.tag or "").lower()
    if tag in ("annotation", "annotation-xml", "mphantom", "none", "mprescripts"):
        return ""
    kids = list(node.children)
    args = [_convert(k) for k in kids]
    text = (node.text or "").strip()
    if tag == "mi":
        if len(text) > 1 and text in FUNCTIONS:
            return "\\" + text
        if len(text) > 1 and node.get_attribute("mathvariant") != "italic" and text.isalpha():
            return r"\mathrm{" + text + "}"
        return _chars(text)
    if tag == "mn":
        return _chars(text)
    if tag == "mo":
        if text in FUNCTIONS:
            return "\\" + text
        return _chars(text)
    if tag in ("mtext", "ms"):
        raw = (node.text or "").replace("\u00a0", " ")
        return r"\text{" + raw + "}" if text else " "
    if tag == "mspace":
        return " "
    if tag == "semantics":
        return tex_annotation(node) or (args[0] if args else "")
    if tag == "mfrac" and len(args) == 2:
        if node.get_attribute("linethickness") in ("0", "0px", "0pt"):
            return rf"\binom{{{args[0]}}}{{{args[1]}}}"
        return rf"\frac{{{args[0]}}}{{{args[1]}}}"
    if tag == "msqrt":
        return rf"\sqrt{{{_join(args)}}}"
    if tag == "mroot" and len(args) == 2:
        return rf"\sqrt[{args[1]}]{{{args[0]}}}"
    if tag == "msup" and len(args) == 2:
        return args[0] + "^" + _group(args[1])
    if tag == "msub" and len(args) == 2:
        return args[0] + "_" + _group(args[1])
    if tag == "msubsup" and len(args) == 3:
        return args[0] + "_" + _group(args[1]) + "^" + _group(args[2])
    if tag == "mover" and len(args) == 2:
        accent = ACCENTS.get(args[1].strip()) or ACCENTS.get((kids[1].text or "").strip())
        if accent:
            return rf"{accent}{{{args[0]}}}"
        if args[0] in BIG_OPERATORS:
            return args[0] + "^" + _group(args[1])
        return rf"\overset{{{args[1]}}}{{{args[0]}}}"
    if tag == "munder" and len(args) == 2:
        if args[0] in BIG_OPERATORS:
            return args[0] + "_" + _group(args[1])
        if (kids[1].text or "").strip() in ("⏟", "_"):
            return rf"\underbrace{{{args[0]}}}"
        return rf"\underset{{{args[1]}}}{{{args[0]}}}"
    if tag == "munderover" and len(args) == 3:
        return args[0] + "_" + _group(args[1]) + "^" + _group(args[2])
    if tag == "mfenced":
        open_, close = node.get_attribute("open") or "(", node.get_attribute("close") or ")"
        sep = (node.get_attribute("separators") or ",").strip()[:1] or ","
        return _chars(open_) + (sep + " ").join(args) + _chars(close)
    if tag == "mtable":
        return r"\begin{matrix} " + r" \\ ".join(args) + r" \end{matrix}"
    if tag in ("mtr", "mlabeledtr"):
        return " & ".join(args)
    # math, mrow, mstyle, mpadded, menclose, merror, mtd, maction, unknown: the row of the children.
    return _join(args)
