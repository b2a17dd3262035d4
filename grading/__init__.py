"""The grading library: how a math question is asked and how its answer is checked.

Imported by every stage that asks or checks (SFT format checks, RL rewards, evaluation, the world's
self-checks), so that RL optimizes exactly what evaluation measures:

    prompts            the CoT / PoT / tool-integrated prompt layouts and stop strings
    benchmarks         benchmark records (MATH, GSM8K, any JSONL/Parquet/hub dataset) -> Problem
    answer_extraction  the final answer of a completion (`\\boxed{}`, "The answer is", ...)
    normalize          string normalization of answers
    equivalence        fast exact comparisons; sympy_compare / latex_arith for the rest
    grader             `grade`, `grade_many`, `group_equivalent`: the one grader
    worker_pool        subprocess workers with hard time limits
    sandbox            isolated execution of model-written code (PoT, tool-integrated)
"""
