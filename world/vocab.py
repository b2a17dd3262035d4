"""The small vocabulary of the generated world's word problems.

Few names and objects on purpose: a character-level model trained for minutes learns a template
only if each word recurs often (issue "The embedded default's world", learnability).
"""

from __future__ import annotations

# (name, subject pronoun, possessive pronoun)
PEOPLE = [
    ("Tom", "he", "his"), ("Ann", "she", "her"), ("Sam", "he", "his"), ("Mia", "she", "her"),
    ("Ben", "he", "his"), ("Zoe", "she", "her"), ("Max", "he", "his"), ("Eva", "she", "her"),
]

# (plural, singular)
OBJECTS = [
    ("apples", "apple"), ("pens", "pen"), ("books", "book"), ("cards", "card"),
    ("cups", "cup"), ("toys", "toy"), ("hats", "hat"), ("balls", "ball"),
]

# Words that `problem.near_key` masks: swapping them does not make a new problem.
MASKED_WORDS = frozenset(
    [w.lower() for p in PEOPLE for w in p] + [w for o in OBJECTS for w in o]
)
