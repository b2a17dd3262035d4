"""The one config system: YAML experiment configs validated against one JSON schema.

`load_config(path, overrides)` reads a config, applies `--set a.b.c=value` overrides (values parsed
as YAML, so `--set rl.beta=0.04` is a float), fills schema defaults and validates. Stages take the
resolved dict and pass plain values on to builders (STYLE.md, torchtune): no config object travels
into library code. `save_resolved` writes the exact config next to an artifact.

Paths between stages are the workflow's business, not the stages': a config names another stage's
output by a placeholder (`"{world_problems}/rl.jsonl"`, `"{corpus_final}"`), and the Snakemake rules
(pipeline/rules/common.smk, the one place that knows the folders under results/<name>/) expand them with
`expand_placeholders` in the resolved config they hand to every job. A stage only reads concrete paths;
a stage refuses a config whose sections it reads still hold a placeholder, naming the key
(`setup(args, sections)`).

The schema is split by section (config/schema/<section>.schema.yaml) so each stage documents its own
keys; `load_schema` inlines the files referenced from config/schema.yaml into one schema.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import logging
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.io import write_text

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


# `{name}` standing for a folder the workflow writes (a lower-case identifier in braces).
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def _strings(node: Any, path: str = ""):
    """(key path, value) of every string in a config."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def _map_strings(node: Any, fn) -> Any:
    if isinstance(node, dict):
        return {k: _map_strings(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def expand_placeholders(cfg: dict, folders: dict[str, str | os.PathLike]) -> dict:
    """A copy of `cfg` with every `{name}` of `folders` replaced by that folder; an unknown name raises."""
    for key, value in _strings(cfg):
        unknown = [m for m in _PLACEHOLDER.findall(value) if m not in folders]
        if unknown:
            raise ConfigError(f"{key}: unknown placeholder {{{unknown[0]}}} in {value!r}; "
                              f"known: {', '.join('{' + k + '}' for k in folders)}")
    return _map_strings(cfg, lambda v: _PLACEHOLDER.sub(lambda m: str(folders[m.group(1)]), v))


def check_no_placeholders(cfg: dict, source: str, sections: tuple[str, ...] = ()) -> None:
    """Stages read concrete paths only; a placeholder left in the sections a stage reads means the config
    did not come from the workflow (which expands them into results/<name>/config.yaml)."""
    for key, value in _strings({k: cfg[k] for k in sections if k in cfg} if sections else cfg):
        if _PLACEHOLDER.search(value):
            raise ConfigError(
                f"{source}: {key} = {value!r} holds a placeholder that only the workflow expands; run the "
                f"stage with the resolved config the workflow writes (results/<name>/config.yaml), or set a "
                f"concrete path with --set {key.split('[')[0]}=...")


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Return the schema with every relative file `$ref` inlined (one self-contained dict)."""
    path = Path(path)
    return _inline_refs(_load_yaml(path), path.parent)


@functools.cache
def _schema() -> dict:
    return load_schema()


def schema_defaults(section: str) -> dict:
    """The schema's defaults for the keys of one config section, a dotted path (`eval`, `world.web`): the
    one place a default is written, for code that needs it without a config (a CLI run with no --config,
    a settings dataclass)."""
    node = _schema()
    for part in section.split("."):
        node = node["properties"][part]
    return {key: copy.deepcopy(sub["default"]) for key, sub in (node.get("properties") or {}).items()
            if "default" in sub}


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def defaults_from_schema(section: str):
    """Class decorator, applied under `@dataclass`: every annotated field without a default of its own
    gets the schema's default for `section.<field>` (lists as tuples), so a settings dataclass repeats no
    default by hand. A field the schema gives no default for is an error at import time."""

    def decorate(cls):
        defaults = schema_defaults(section)
        for name in cls.__dict__.get("__annotations__", {}):
            if name in cls.__dict__:
                continue
            if name not in defaults:
                raise TypeError(f"{cls.__name__}.{name}: config section {section!r} of the schema has no default "
                                "for it")
            setattr(cls, name, _frozen(defaults[name]))
        return cls

    return decorate


def settings_from(cls, section: dict, **extra: Any):
    """A settings dataclass from a config section: its fields taken from `section` (lists as tuples),
    keys the dataclass does not have ignored, the rest left to the dataclass's (schema) defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _frozen(v) for k, v in section.items() if k in names}, **extra)


def _load_yaml(path: Path) -> Any:
    # libyaml's loader when PyYAML has it: the schema is read by every stage process (9x faster)
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _inline_refs(node: Any, base: Path) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            target = base / ref
            return _inline_refs(_load_yaml(target), target.parent)
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


# Snakemake's `--config` accepts `key=value` with `key` an identifier only (`rl.beta=...` is refused by
# Snakemake's own parser before the workflow starts) and types nested values as strings
# (`rl={beta: 0.02}` arrives as {"rl": {"beta": "0.02"}}). The workflow therefore re-reads the raw
# arguments (`workflow.config_settings.config_args`) with this module's YAML reader, and takes dotted
# overrides through one key, `set`: `--config 'set=[rl.beta=0.02, rl.lr=1e-6]'` (or `set=rl.beta=0.02`).
CLI_SET_KEY = "set"


def _merge(base: dict, over: dict) -> dict:
    """`over` deep-merged into a copy of `base` (mappings merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def cli_overrides(cfg: dict, config_args: list[str] | None) -> dict:
    """`cfg` (Snakemake's config: config files merged with its own reading of `--config`) with every
    `--config key=value` re-read as typed YAML and every `set=` entry (`a.b.c=value`, one or a list)
    applied as a nested override. The `set` key itself is removed. Raises ConfigError in one line."""
    cfg = {k: v for k, v in cfg.items() if k != CLI_SET_KEY}
    dotted: list[str] = []
    for arg in config_args or []:
        key, sep, raw = arg.partition("=")
        if not sep:
            raise ConfigError(f"--config {arg!r}: expected key=value")
        try:
            value = read_yaml(raw) if raw != "" else None
        except yaml.YAMLError as e:
            raise ConfigError(f"--config {arg!r}: the value is not YAML ({str(e).splitlines()[0]})") from None
        if key == CLI_SET_KEY:
            items = value if isinstance(value, list) else [raw]
            if not all(isinstance(i, str) for i in items):
                raise ConfigError(f"--config {arg!r}: set= takes key.path=value strings, e.g. "
                                  "--config 'set=[rl.beta=0.02, rl.lr=1e-6]'")
            dotted += items
        else:
            cfg = _merge(cfg, {key: value})
    return apply_overrides(cfg, dotted)


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
    schema = schema or _schema()
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


def setup(args: argparse.Namespace, sections: tuple[str, ...] = ()) -> dict:
    """Parse-time setup shared by stage CLIs: logging, config (its `sections` checked for unexpanded
    placeholders), torch threads. Returns the config."""
    setup_logging(args.log_level)
    cfg = load_config(args.config, args.overrides)
    check_no_placeholders(cfg, args.config, sections)
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
    # Imported here, not at the top: Snakemake's parser and the config CLIs import this module and
    # should not pay torch's import (about 1.5 s) for nothing.
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
