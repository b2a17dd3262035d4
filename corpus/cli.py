"""What every corpus CLI shares: `--config` (+ `--set` overrides) and logging.

The corpus steps use no torch, so they set up logging and load the config themselves instead of
`pipeline.config.setup`, which imports torch to set its threads (seconds per job, dozens of jobs).
"""

from __future__ import annotations

import argparse

from pipeline.config import load_config, setup_logging, stage_parser


def parser(description: str) -> argparse.ArgumentParser:
    return stage_parser(description)


def setup(args: argparse.Namespace) -> dict:
    setup_logging(args.log_level)
    return load_config(args.config, args.overrides)
