"""Math page content and the HTML shell of every page of the generated web.

The math is the problem family's (paper §2.2: the corpus helps downstream when its math is the
downstream kind): worked problems, practice sets, forum Q&A threads and lecture notes, all built from
the templates of world/gsm.py and world/mathlike.py with fresh numbers (world/drills.py adds the
worked-arithmetic pages). Formulas appear as MathJax
`$...$`, `\\(...\\)`, `$$...$$` and as MathML `<math>`, the forms an extractor that keeps LaTeX
(OpenWebMath's, or resiliparse with MathML conversion) has to handle. The shell adds each site's
navigation, sidebar and footer, the boilerplate a text extractor must drop; a near-duplicate is the
same content in a different shell (`variant`).
"""

from __future__ import annotations

import html
import random
import re
from dataclasses import dataclass
from datetime import datetime

from world.problem import Problem
from world.prose import Content
from world.vocab import PEOPLE

MATHJAX = '<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'

TOPICS = {  # template -> (topic title, general method in LaTeX, its formula in MathML, and in LaTeX)
    "gsm.chain": ("Word problems: adding and taking away",
                  "Keep a running count: after each event write \\(n_{\\text{new}} = n_{\\text{old}} + k\\) or \\(n_{\\text{old}} - k\\).",
                  "<mi>n</mi><mo>=</mo><mi>n</mi><mo>+</mo><mi>k</mi>",
                  "n = n + k"),
    "gsm.shopping": ("Word problems: shopping and money",
                     "The cost of \\(n\\) items at price \\(p\\) each is \\(n \\cdot p\\); add the costs to get the total.",
                     "<mi>C</mi><mo>=</mo><mi>n</mi><mo>&#x22C5;</mo><mi>p</mi>",
                     "C = n \\cdot p"),
    "gsm.compare": ("Word problems: comparing amounts",
                    "If one person has \\(a\\) and another has \\(k\\) more, the second has \\(a + k\\); together \\(a + (a + k)\\).",
                    "<mi>b</mi><mo>=</mo><mi>a</mi><mo>+</mo><mi>k</mi>",
                    "b = a + k"),
    "math.linear": ("Solving linear equations",
                    "To solve \\(ax + b = c\\), subtract \\(b\\) from both sides and divide by \\(a\\): $$x = \\frac{c - b}{a}.$$",
                    "<mi>x</mi><mo>=</mo><mfrac><mrow><mi>c</mi><mo>-</mo><mi>b</mi></mrow><mi>a</mi></mfrac>",
                    "x = \\frac{c - b}{a}"),
    "math.inequality": ("Linear inequalities and interval notation",
                        "For \\(a > 0\\), \\(ax + b < c\\) means \\(x < \\frac{c - b}{a}\\), the interval $$\\left(-\\infty, \\frac{c - b}{a}\\right).$$",
                        "<mi>x</mi><mo>&lt;</mo><mfrac><mrow><mi>c</mi><mo>-</mo><mi>b</mi></mrow><mi>a</mi></mfrac>",
                        "x < \\frac{c - b}{a}"),
    "math.system": ("Systems of two linear equations",
                    "Adding \\(x + y = s\\) and \\(x - y = d\\) eliminates \\(y\\): $$2x = s + d.$$",
                    "<mn>2</mn><mi>x</mi><mo>=</mo><mi>s</mi><mo>+</mo><mi>d</mi>",
                    "2x = s + d"),
    "math.fractions": ("Adding and multiplying fractions",
                       "With a common denominator, $$\\frac{a}{b} + \\frac{c}{d} = \\frac{ad + cb}{bd},$$ then divide by the greatest common divisor.",
                       "<mfrac><mi>a</mi><mi>b</mi></mfrac><mo>+</mo><mfrac><mi>c</mi><mi>d</mi></mfrac><mo>=</mo>"
                       "<mfrac><mrow><mi>a</mi><mi>d</mi><mo>+</mo><mi>c</mi><mi>b</mi></mrow><mrow><mi>b</mi><mi>d</mi></mrow></mfrac>",
                       "\\frac{a}{b} + \\frac{c}{d} = \\frac{ad + cb}{bd}"),
    "math.radical": ("Simplifying square roots",
                     "Write \\(n = k^2 m\\) with \\(m\\) square-free; then $$\\sqrt{n} = k\\sqrt{m}.$$",
                     "<msqrt><msup><mi>k</mi><mn>2</mn></msup><mi>m</mi></msqrt><mo>=</mo><mi>k</mi><msqrt><mi>m</mi></msqrt>",
                     "\\sqrt{k^2 m} = k\\sqrt{m}"),
    "math.midpoint": ("The midpoint formula",
                      "The midpoint of \\((x_1, y_1)\\) and \\((x_2, y_2)\\) is $$\\left(\\frac{x_1 + x_2}{2}, \\frac{y_1 + y_2}{2}\\right).$$",
                      "<mi>M</mi><mo>=</mo><mo>(</mo><mfrac><mrow><msub><mi>x</mi><mn>1</mn></msub><mo>+</mo>"
                      "<msub><mi>x</mi><mn>2</mn></msub></mrow><mn>2</mn></mfrac><mo>,</mo><mfrac><mrow><msub><mi>y</mi>"
                      "<mn>1</mn></msub><mo>+</mo><msub><mi>y</mi><mn>2</mn></msub></mrow><mn>2</mn></mfrac><mo>)</mo>",
                      "M = \\left(\\frac{x_1 + x_2}{2}, \\frac{y_1 + y_2}{2}\\right)"),
    "math.remainder": ("Division with remainder",
                       "Every integer \\(n\\) can be written as \\(n = dq + r\\) with \\(0 \\le r < d\\); \\(r\\) is the remainder.",
                       "<mi>n</mi><mo>=</mo><mi>d</mi><mi>q</mi><mo>+</mo><mi>r</mi>",
                       "n = dq + r"),
}
_INLINE = re.compile(r"(?<!\$)\$([^$]+)\$(?!\$)")


def math_html(text: str, style: str) -> str:
    """Escape for HTML and write inline math as `$...$` (style "dollar") or `\\(...\\)` ("paren")."""
    if style == "paren":
        text = _INLINE.sub(lambda m: f"\\({m.group(1)}\\)", text)
    return html.escape(text, quote=False)


def _math_para(c: Content, text: str, style: str, tag: str = "p") -> None:
    c.raw(f"<{tag}>{math_html(text, style)}</{tag}>", text)


def _user(rng: random.Random) -> str:
    return f"{rng.choice(PEOPLE)[0].lower()}{rng.randint(1, 999)}"


def worked_problem(rng: random.Random, p: Problem, style: str) -> Content:
    c = Content("worked_problem", f"Worked example: {TOPICS[p.template][0].lower()}", mathjax=True)
    c.para(rng.choice(["Here is a fully worked example.", "Read the problem, then try it before the solution.",
                       "A typical exercise, solved step by step."]))
    c.raw("<h2>Problem</h2>", "Problem")
    _math_para(c, p.question, style)
    c.raw("<h2>Solution</h2>", "Solution")
    _math_para(c, p.cot, style)
    if rng.random() < 0.4:
        c.para("You can check the answer with a short program:")
        c.raw(f"<pre><code class=\"language-python\">{html.escape(p.program)}</code></pre>", p.program)
    return c


def problem_set(rng: random.Random, topic: str, items: list[tuple[str, str]], style: str,
                kind: str = "problem_set") -> Content:
    """Numbered (question, solution) pairs, each solution folded under its question."""
    c = Content(kind, f"Practice set: {topic.lower()}", mathjax=True)
    c.para(f"Try these {len(items)} problems. Solutions are below each one.")
    rows = []
    for i, (question, solution) in enumerate(items, 1):
        rows.append(f"<li><p>{math_html(question, style)}</p><details><summary>Solution</summary>"
                    f"<p>{math_html(solution, style)}</p></details></li>")
        c.text.append(f"{i}. {question}\nSolution: {solution}")
    c.blocks.append("<ol>" + "".join(rows) + "</ol>")
    return c


def qa_thread(rng: random.Random, question: str, answer: str, style: str, kind: str = "qa_thread") -> Content:
    """A forum thread: a question post, an accepted answer, a comment."""
    title = rng.choice(["How do I solve this?", "Stuck on a homework problem", "Is my answer right?",
                        "Help with this exercise", "Where did I go wrong?"])
    c = Content(kind, title, mathjax=True)
    c.blocks.append(f"<div class=\"post question\"><p class=\"user\">{_user(rng)} asked {rng.randint(2, 30)} days ago</p>")
    c.para(rng.choice(["I am stuck on this one:", "Can someone check this?", "My book has this exercise:"]))
    _math_para(c, question, style, tag="blockquote")
    c.blocks.append("</div>")
    c.blocks.append(f"<div class=\"post answer accepted\"><p class=\"user\">{_user(rng)} answered "
                    f"(score {rng.randint(1, 40)})</p>")
    _math_para(c, answer, style)
    c.blocks.append("</div>")
    comment = rng.choice(["Thanks, that makes sense now!", "Great explanation, thank you.", "I see my mistake now."])
    c.raw(f"<p class=\"comment\">{comment}</p>", comment)
    return c


def lecture_notes(rng: random.Random, template: str, examples: list[Problem], style: str, mathml: bool) -> Content:
    title, method, mathml_formula, tex_formula = TOPICS[template]
    c = Content("lecture_notes", f"Lecture notes: {title.lower()}", mathjax=True)
    c.para(f"In this lesson we study {title.lower()}. {rng.choice(['Read the method first.', 'Work along with a pencil.', 'The examples use small numbers.'])}")
    c.raw("<h2>Method</h2>", "Method")
    c.raw(f"<p>{html.escape(method, quote=False)}</p>", method)
    if mathml:
        # The plain text keeps the formula as LaTeX, as OpenWebMath's extractor turns MathML into LaTeX.
        alt = html.escape(tex_formula) if rng.random() < 0.5 else ""
        attrs = f' alttext="{alt}"' if alt else ""
        c.raw(f'<p>In symbols: <math display="block"{attrs}><mrow>{mathml_formula}</mrow></math></p>',
              f"In symbols: $${tex_formula}$$")
    for i, p in enumerate(examples, 1):
        c.raw(f"<h3>Example {i}</h3>", f"Example {i}")
        _math_para(c, p.question, style)
        _math_para(c, p.cot, style)
    return c


@dataclass(frozen=True)
class Site:
    """A domain's look: name, navigation and footer (its boilerplate), and how it writes inline math."""

    domain: str
    name: str
    nav: tuple[str, ...]
    footer: str
    math_style: str = "dollar"


def render_html(site: Site, content: Content, date: datetime, related: list[str], variant: int = 0) -> str:
    """The whole page. `variant` > 0 gives the same content in edited boilerplate (a near-duplicate)."""
    nav = list(site.nav)
    stamp = date.strftime("%B %d, %Y")
    banner = ""
    if variant:
        nav = nav[::-1] + ["Print", "Share"]
        stamp = f"{stamp} (updated {date.strftime('%d/%m/%Y')})"
        banner = f'<div class="banner">Printer-friendly version of a page from {html.escape(site.name)}.</div>'
    head = ["<meta charset=\"utf-8\">", f"<title>{html.escape(content.title)} | {html.escape(site.name)}</title>",
            f"<meta name=\"description\" content=\"{html.escape(content.title)}\">",
            '<link rel="stylesheet" href="/static/site.css">']
    if content.mathjax:
        head.append(MATHJAX)
    links = "".join(f'<li><a href="/{_slug(n)}/">{html.escape(n)}</a></li>' for n in nav)
    side = "".join(f"<li><a href=\"{html.escape(u)}\">{html.escape(u.rsplit('/', 1)[-1].replace('-', ' '))}</a></li>"
                   for u in related)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n" + "\n".join(head) + "\n</head>\n<body>\n"
        f"<header><div class=\"logo\">{html.escape(site.name)}</div><nav><ul>{links}</ul></nav></header>\n{banner}"
        f"<main>\n<article>\n<h1>{html.escape(content.title)}</h1>\n<p class=\"meta\">Posted {stamp}</p>\n"
        + "\n".join(content.blocks)
        + f"\n</article>\n<aside><h2>Related</h2><ul>{side}</ul></aside>\n</main>\n"
        f"<footer><p>{html.escape(site.footer)} &copy; {date.year} {html.escape(site.name)}. All rights reserved.</p>"
        '<p><a href="/privacy">Privacy</a> | <a href="/terms">Terms</a> | <a href="/contact">Contact</a></p></footer>\n'
        '<div class="cookies">This site uses cookies to improve your experience. <button>OK</button></div>\n'
        "</body>\n</html>\n"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def slug(text: str, words: int = 6) -> str:
    """URL slug of a title: lower case, ASCII words joined by '-'."""
    return "-".join(_slug(text).split("-")[:words]) or "page"
