"""`python -m rl.grpo`: the RL stage's former entry point, kept for existing commands and imports.

Every algorithm of the unified view (GRPO included) now runs through rl/train.py; this module re-exports
its names and runs it with the config's `rl.algorithm` (default grpo).
"""

from rl.train import (  # noqa: F401  (re-exported names)
    ReferenceReset,
    build_prompts,
    main,
    make_loss_fn,
    resume_key,
    run,
    summarize,
)

if __name__ == "__main__":
    main()
