"""Non-math page content of the generated web: ordinary prose and numeric decoys.

Paper §2.1 trains a fastText classifier to tell math pages from the rest of Common Crawl. Its hard
negatives are pages full of numbers that are not math, so the decoys here are numeric on purpose:
shop prices (with `$` signs that look like TeX delimiters), sports scores, timetables, recipes with
fractions of cups, and developer pages that load MathJax but contain no math. Every generator takes an
RNG and returns a `Content`; world/pages.py wraps it in a site's HTML.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field

from world.vocab import PEOPLE


@dataclass
class Content:
    """A page's main content: title, HTML blocks inside <article>, and the same as plain text."""

    kind: str
    title: str
    blocks: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    mathjax: bool = False  # load MathJax in <head>

    def para(self, text: str, tag: str = "p") -> None:
        self.blocks.append(f"<{tag}>{html.escape(text, quote=False)}</{tag}>")
        self.text.append(text)

    def raw(self, block: str, text: str) -> None:
        self.blocks.append(block)
        self.text.append(text)


CITIES = ["Riverton", "Lakeside", "Oakford", "Millbrook", "Stonebridge", "Fairview", "Ashland", "Westport"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "March", "April", "May", "June", "September", "October", "November"]
TEAMS = ["Rovers", "Falcons", "Tigers", "Comets", "Pirates", "Wolves", "Hawks", "Giants"]

_TOPICS = {
    "news": (["the city council", "local residents", "the school board", "volunteers", "the mayor", "shop owners"],
             ["discussed", "approved", "opposed", "celebrated", "reviewed", "announced"],
             ["a new park", "the bus routes", "the library hours", "a summer festival", "the bridge repairs",
              "a recycling plan"]),
    "travel": (["the old town", "the harbour", "a quiet beach", "the mountain trail", "the night market",
                "the cathedral"],
               ["is worth", "rewards", "surprised", "charmed", "welcomed", "disappointed"],
               ["a slow morning", "every visitor", "our small group", "families with children", "late walkers",
                "anyone who likes food"]),
    "blog": (["my garden", "our dog", "the new kitchen", "this winter", "my reading list", "the weekend"],
             ["taught me", "gave us", "brought", "needed", "changed", "filled"],
             ["a lot of patience", "some unexpected joy", "more work than planned", "a fresh start",
              "long evenings", "good stories"]),
    "review": (["the film", "this novel", "the album", "the new phone", "the sequel", "the director"],
               ["delivers", "lacks", "offers", "promises", "handles", "avoids"],
               ["a gripping story", "beautiful pictures", "strong characters", "a weak ending",
                "clever dialogue", "too many scenes"]),
}
_ADJECTIVES = ["bright", "busy", "calm", "friendly", "long", "lovely", "noisy", "simple", "warm", "careful"]
_OPENERS = ["Last week", "This spring", "On {day}", "In {month}", "Earlier today", "For years", "Once again"]


def _sentence(rng: random.Random, topic: str) -> str:
    subjects, verbs, objects = _TOPICS[topic]
    subject, verb, obj = rng.choice(subjects), rng.choice(verbs), rng.choice(objects)
    pattern = rng.randrange(5)
    if pattern == 0:
        opener = rng.choice(_OPENERS).format(day=rng.choice(DAYS), month=rng.choice(MONTHS))
        return f"{opener}, {subject} {verb} {obj}."
    if pattern == 1:
        return f"{subject.capitalize()} {verb} {obj} in {rng.choice(CITIES)}."
    if pattern == 2:
        return f"Many people say that {subject} {verb} {obj}."
    if pattern == 3:
        return f"It was a {rng.choice(_ADJECTIVES)} day, and {subject} {verb} {obj}."
    return f"{rng.choice(PEOPLE)[0]} from {rng.choice(CITIES)} thinks {obj} matters most."


def paragraph(rng: random.Random, topic: str, sentences: tuple[int, int] = (3, 6)) -> str:
    return " ".join(_sentence(rng, topic) for _ in range(rng.randint(*sentences)))


def prose_page(rng: random.Random, topic: str) -> Content:
    """An ordinary article (news, travel, blog, review)."""
    subjects, _, objects = _TOPICS[topic]
    c = Content(topic, f"{rng.choice(subjects).capitalize()} and {rng.choice(objects)}")
    for _ in range(rng.randint(2, 5)):
        c.para(paragraph(rng, topic))
    return c


def jobs_page(rng: random.Random) -> Content:
    role = rng.choice(["Barista", "Web developer", "Nurse", "Driver", "Librarian", "Sales assistant", "Gardener"])
    city = rng.choice(CITIES)
    c = Content("jobs", f"{role} wanted in {city}")
    c.para(f"We are hiring a {role.lower()} for our team in {city}. The position starts in {rng.choice(MONTHS)}.")
    items = [f"{rng.randint(1, 5)} years of experience", "a friendly attitude", "a driving licence",
             f"availability on {rng.choice(DAYS)}s", "good written English"]
    c.raw("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in rng.sample(items, 3)) + "</ul>",
          "Requirements: " + ", ".join(items[:3]) + ".")
    c.para(f"Salary from ${rng.randint(18, 40)},{rng.randint(0, 9)}00 per year. Apply before {rng.choice(MONTHS)} {rng.randint(1, 28)}.")
    return c


def profile_page(rng: random.Random) -> Content:
    name = rng.choice(PEOPLE)[0]
    c = Content("profile", f"User {name}{rng.randint(10, 999)}")
    c.para(f"Member since {rng.randint(2012, 2023)}. {rng.randint(1, 900)} posts, {rng.randint(0, 90)} badges.")
    c.para(paragraph(rng, "blog", (1, 2)))
    return c


def prices_page(rng: random.Random) -> Content:
    """A shop listing: dollar amounts, discounts in percent, quantities."""
    goods = ["desk lamp", "coffee mug", "rain jacket", "phone case", "garden hose", "wool scarf", "tea kettle",
             "bike light", "backpack", "notebook set"]
    c = Content("prices", f"{rng.choice(['Summer', 'Winter', 'Spring'])} sale: {rng.choice(goods)}s and more")
    rows = []
    for g in rng.sample(goods, rng.randint(4, 8)):
        price = f"${rng.randint(3, 199)}.{rng.randint(0, 99):02d}"
        rows.append((g, price, f"{rng.choice([10, 15, 20, 25, 30, 50])}% off", str(rng.randint(0, 40))))
    c.raw("<table><tr><th>Item</th><th>Price</th><th>Deal</th><th>In stock</th></tr>"
          + "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
          + "</table>", "\n".join(" | ".join(r) for r in rows))
    c.para(f"Free shipping on orders over ${rng.choice([25, 35, 50])}. Offer ends {rng.choice(DAYS)}.")
    return c


def scores_page(rng: random.Random) -> Content:
    c = Content("scores", f"Results for week {rng.randint(1, 38)}")
    rows = []
    for _ in range(rng.randint(4, 8)):
        home, away = rng.sample(TEAMS, 2)
        rows.append(f"{home} {rng.randint(0, 5)} - {rng.randint(0, 5)} {away}")
    c.raw("<ul>" + "".join(f"<li>{r}</li>" for r in rows) + "</ul>", "\n".join(rows))
    c.para(f"The {rng.choice(TEAMS)} lead the table with {rng.randint(20, 60)} points after "
           f"{rng.randint(10, 30)} games. Attendance was {rng.randint(2, 40)},{rng.randint(100, 999)}.")
    return c


def timetable_page(rng: random.Random) -> Content:
    line = rng.randint(1, 99)
    a, b = rng.sample(CITIES, 2)
    c = Content("timetable", f"Bus {line}: {a} to {b}")
    hour, rows = rng.randint(5, 9), []
    for _ in range(rng.randint(5, 10)):
        minute = rng.choice([0, 10, 15, 20, 30, 40, 45, 50])
        rows.append((f"{hour:02d}:{minute:02d}", f"{(hour + 1) % 24:02d}:{(minute + 25) % 60:02d}", f"platform {rng.randint(1, 6)}"))
        hour = (hour + rng.randint(1, 2)) % 24
    c.raw("<table><tr><th>Departs</th><th>Arrives</th><th>Stop</th></tr>"
          + "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in rows)
          + "</table>", "\n".join(" ".join(r) for r in rows))
    c.para(f"Tickets cost ${rng.randint(1, 9)}.{rng.choice(['00', '50', '75'])}. No service on {rng.choice(DAYS)}s.")
    return c


def recipe_page(rng: random.Random) -> Content:
    dish = rng.choice(["banana bread", "tomato soup", "apple pie", "pancakes", "lentil stew", "lemon cake"])
    c = Content("recipe", f"Easy {dish}")
    amounts = ["1/2 cup", "1 cup", "2 cups", "3/4 cup", "1 tsp", "1/4 tsp", "2 tbsp", "3", "200 g", "1 1/2 cups"]
    things = ["flour", "sugar", "milk", "butter", "eggs", "salt", "water", "oil", "onions", "baking soda"]
    items = [f"{rng.choice(amounts)} {t}" for t in rng.sample(things, rng.randint(4, 7))]
    c.raw("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>", "\n".join(items))
    c.para(f"Heat the oven to {rng.choice([180, 190, 200, 350, 375])} degrees. Mix everything and bake for "
           f"{rng.randint(20, 60)} minutes. Serves {rng.randint(2, 8)}.")
    return c


def code_page(rng: random.Random) -> Content:
    """A developer page that loads MathJax (a theme default) but has no math in it."""
    tool = rng.choice(["webpack", "docker", "nginx", "git", "cron", "systemd"])
    c = Content("code", f"How to configure {tool} for a small project", mathjax=True)
    c.para(f"This note shows a minimal {tool} setup that we use on {rng.randint(2, 12)} servers.")
    port = rng.choice([3000, 5000, 8000, 8080])
    snippet = rng.choice([
        f"server {{\n  listen {port};\n  root /var/www/site;\n}}",
        f"git clone https://example.com/repo.git\ncd repo && make -j{rng.randint(2, 8)}",
        f"*/{rng.randint(5, 30)} * * * * /usr/local/bin/backup.sh",
        f"docker run -p {port}:{port} --name app -d app:latest",
    ])
    c.raw(f"<pre><code>{html.escape(snippet)}</code></pre>", snippet)
    c.para(f"Restart the service after editing and check the logs with {tool} status.")
    return c


NONMATH_KINDS = {
    "news": lambda rng: prose_page(rng, "news"),
    "travel": lambda rng: prose_page(rng, "travel"),
    "blog": lambda rng: prose_page(rng, "blog"),
    "review": lambda rng: prose_page(rng, "review"),
    "jobs": jobs_page,
    "profile": profile_page,
    "prices": prices_page,
    "scores": scores_page,
    "timetable": timetable_page,
    "recipe": recipe_page,
    "code": code_page,
}
