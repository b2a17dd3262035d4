"""Atomic artifact writes and run records, used by every stage.

Every output is written to a temporary file beside its destination and renamed into place, so a
crashed job never leaves a file that looks finished (DESIGN.md, "Architecture").
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    Works for files and for directories (e.g. a `save_pretrained` folder): whatever the block
    creates at the yielded path replaces `path` in one rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / (path.name + suffix)
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"atomic write of {path}: nothing was written at {target}")
        if path.is_dir() and not path.is_symlink():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.rename(path, old)
            os.rename(target, path)
            _rmtree(old)
        else:
            os.replace(target, path)
    finally:
        _rmtree(tmp)


def _rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write rows as JSON lines atomically; returns the number of rows."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
            n += 1
    return n


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, dict | None, str | None]]:
    """Every non-blank line of a (optionally gzipped) JSONL file, in order, as ("file:line", object, None)
    or ("file:line", None, reason) for a line that is not a JSON object. The project's one JSONL parser;
    `read_jsonl` is the usual way in."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except ValueError as e:
                yield where, None, f"bad JSON ({getattr(e, 'msg', e)})"
                continue
            if isinstance(obj, dict):
                yield where, obj, None
            else:
                yield where, None, f"not a JSON object (a {type(obj).__name__})"


def read_jsonl(path: str | os.PathLike, *, strict: bool = True,
               on_skip: Callable[[str, str], None] | None = None, with_location: bool = False) -> Iterator:
    """Yield JSON objects from a (optionally gzipped) JSONL file; `("file:line", object)` pairs with
    `with_location`.

    A malformed line raises ValueError naming the file and line. With strict=False it is skipped
    instead: reported to `on_skip(reason, "file:line")` (a caller's counter), else logged.
    """
    for where, obj, reason in iter_jsonl(path):
        if obj is not None:
            yield (where, obj) if with_location else obj
        elif strict:
            raise ValueError(f"{where}: bad JSON record: {reason}")
        elif on_skip is not None:
            on_skip(reason, where)
        else:
            log.warning("skipped %s: %s", where, reason)


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line and flush it (metrics logs; a torn last line is ignored on read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=_json_default) + "\n")
        f.flush()


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # numpy / torch scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def fingerprint(*parts: Any) -> str:
    """sha256 of `parts` as sorted-key JSON: the key under which resumable state (training checkpoints,
    generated evaluation chunks) is kept, so that state made under other settings is never reused."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()


def run_record(stage: str, config: dict | None = None, **extra: Any) -> dict:
    """What produced an artifact: stage, time, host, versions, git commit, argv, resolved config."""
    rec: dict[str, Any] = {
        "stage": stage,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "argv": sys.argv,
        "git_commit": _git_commit(),
        "versions": _versions(),
    }
    if config is not None:
        rec["config"] = config
    rec.update(extra)
    return rec


def write_run_record(out_dir: str | os.PathLike, stage: str, config: dict | None = None, **extra: Any) -> Path:
    """Write `run.json` (the run record, with the resolved config) into an artifact's folder."""
    path = Path(out_dir) / "run.json"
    write_json(path, run_record(stage, config, **extra))
    return path


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("mathpipe", "torch", "transformers", "datasets", "sympy", "fasttext-numpy2-wheel",
                "datasketch", "snakemake", "vllm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out
