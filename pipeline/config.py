"""The one config system: YAML experiment configs validated against one JSON schema.

`load_config(path, overrides)` reads a config, applies `--set a.b.c=value` overrides (values parsed
as YAML, so `--set rl.beta=0.04` is a float), fills schema defaults and validates. Stages take the
resolved dict and pass plain values on to builders (STYLE.md, torchtune): no config object travels
into library code. `save_resolved` writes the exact config next to an artifact.

The schema is split by section (config/schema/<section>.schema.yaml) so each stage documents its own
keys; `load_schema` inlines the files referenced from config/schema.yaml into one schema.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
SCHEMA_PATH = CONFIG_DIR / "schema.yaml"

log = logging.getLogger(__name__)


class _Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `1e-4` (no dot) is a string; YAML 1.2 and every user mean a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_yaml(text: str) -> Any:
    """Parse YAML text as configs are read (numbers like `1e-4` are floats)."""
    return yaml.load(text, Loader=_Loader)


class ConfigError(ValueError):
    """A config that does not load or does not match the schema; the message names file and key."""


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Return the schema with every relative file `$ref` inlined (one self-contained dict)."""
    path = Path(path)
    return _inline_refs(yaml.safe_load(path.read_text()), path.parent)


def _inline_refs(node: Any, base: Path) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            target = base / ref
            return _inline_refs(yaml.safe_load(target.read_text()), target.parent)
        return {k: _inline_refs(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, base) for v in node]
    return node


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (['a','b','c'], yaml-parsed value)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key.path=value")
    key, raw = item.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r}: empty key segment")
    return key.split("."), read_yaml(raw) if raw != "" else ""


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        keys, value = parse_override(item)
        node = cfg
        for k in keys[:-1]:
            if not isinstance(node.setdefault(k, {}), dict):
                raise ConfigError(f"override {item!r}: {k!r} is not a mapping")
            node = node[k]
        node[keys[-1]] = value
    return cfg


def _fill_defaults(schema: dict, data: Any) -> Any:
    """Fill `default`s from the schema into missing keys (recursively, objects only)."""
    if not isinstance(data, dict) or schema.get("type") != "object":
        return data
    for key, sub in (schema.get("properties") or {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        if key not in data and sub.get("type") == "object" and "properties" in sub:
            data[key] = {}
        if key in data:
            data[key] = _fill_defaults(sub, data[key])
    return data


def validate(cfg: dict, source: str = "<config>", schema: dict | None = None) -> dict:
    """Fill defaults and validate; raise ConfigError naming the source and the offending key."""
    import jsonschema

    schema = schema or load_schema()
    cfg = _fill_defaults(schema, copy.deepcopy(cfg))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.path)) or '<top>'}: {e.message}" for e in errors[:20]]
        raise ConfigError(f"{source}: config does not match config/schema.yaml:\n" + "\n".join(lines))
    return cfg


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> dict:
    path = Path(path)
    try:
        raw = read_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping")
    return validate(apply_overrides(raw, overrides), source=str(path))


def save_resolved(cfg: dict, out_dir: str | os.PathLike, name: str = "config.yaml") -> Path:
    """Write the resolved config beside an artifact (atomically)."""
    from pipeline.io import write_text

    path = Path(out_dir) / name
    write_text(path, yaml.safe_dump(cfg, sort_keys=False))
    return path


def results_dir(cfg: dict) -> Path:
    """results/<config name>/ — every artifact of a config lives below it."""
    return Path(cfg.get("results_root", "results")) / cfg["name"]


def stage_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every stage CLI shares: --config, --set, --threads, --log-level."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", required=True, help="experiment config YAML (e.g. config/tiny.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set rl.beta=0.04 (repeatable)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for this process (default: config `threads`, else 1)")
    p.add_argument("--log-level", default="INFO")
    return p


def setup(args: argparse.Namespace) -> dict:
    """Parse-time setup shared by stage CLIs: logging, config, torch threads. Returns the config."""
    setup_logging(args.log_level)
    cfg = load_config(args.config, args.overrides)
    set_threads(args.threads if args.threads is not None else cfg.get("threads", 1))
    return cfg


def setup_logging(level: str = "INFO") -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.INFO) if rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def set_threads(n: int) -> None:
    """One torch thread per process by default: on 2 cores, 2 threads are up to 7x slower under load."""
    n = max(1, int(n or 1))
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    os.environ.setdefault("MKL_NUM_THREADS", str(n))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
