"""The embedded default's generated world (../shared/DESIGN.md, "The embedded default").

No network, no GPU and no pretrained weights on a fresh machine, so the default config generates a
small, fully known world and runs the real pipeline on it:

    python -m world.problems --config config/tiny.yaml --out-dir results/tiny/world/problems  # (rule world_problems)
    python -m world.web --config config/tiny.yaml \\
        --test-gsm8k .../test_gsm8k.jsonl --test-math .../test_math.jsonl --out-dir results/tiny/world/web

Modules:
    problem.py   one problem and its three response formats (CoT, PoT, tool-integrated; paper §3.1)
    vocab.py     the small vocabulary of the word problems
    gsm.py       GSM8K-like word-problem templates
    mathlike.py  MATH-like templates with LaTeX answers (fractions, radicals, intervals, tuples)
    execute.py   runs the programs whose outputs become gold answers and tool outputs
    problems.py  splits, answer verification, GSM8K/MATH500 test files, CLI
    prose.py     non-math page content: prose and numeric decoys
    pages.py     math page content and the HTML shell of every page
    sites.py     the domains (math, mixed, decoy, prose) and their page counts
    warc.py      WARC/1.1 writer, one gzip member per record
    web.py       the web: pages, duplicates, contamination, seed, labels, CLI
"""
