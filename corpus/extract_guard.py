"""Bounds on HTML extraction time and memory (issue #18 item 4): a pathological page is dropped with a
named reason and the shard goes on.

Why a guard: Resiliparse's main-content extraction is quadratic in the nesting depth of `<div>` /
`<article>` elements (measured in CPU time: depth 1000 -> 0.03 s, 2000 -> 0.13 s, 4000 -> 0.5 s, so
20,000 -> ~15 s, and minutes of wall time on a loaded machine); parsing and nested lists are quadratic too,
with ~20x smaller constants. The work runs in C, so no signal can stop it.

Two paths, so only suspicious pages pay for a process boundary:
- `dom_depth` estimates, in one linear vectorised scan of the raw HTML, the nesting depth the parser
  will build and the number of nesting tags. A page with at most `guard_depth` `<` characters cannot be
  deeper than that and skips the scan. Pages under `guard_depth` and `guard_tags` are extracted in the
  calling process (their worst case is bounded: measured ~0.03 s for 1,000 nested divs, ~0.5 s for 40,000
  tags of a 1 MB page).
- Every other page goes to `GuardedExtractor`: one child process (started on first use) extracts it
  under a wall-clock `time_limit_s` and an address-space limit of `memory_limit_mb` over the child's
  size at start. A child past its time is killed (and restarted for the next page); the page is dropped
  as `extract_timeout`. A MemoryError (or Lexbor's failed allocation) is `extract_memory`; a child that
  dies (a library that aborts when an allocation fails) is `extract_crash`. Both restart the child.

The depth estimate counts start tags minus end tags of elements that nest (void elements, self-closed
tags `<x/>` and elements whose end tag is implied by the next sibling, `<p>`, `<li>`, `<td>`..., do not
count). It overestimates a page that leaves a `<div>` unclosed (the parser nests those too) or writes tags
in script strings; an overestimate only routes a page to the guarded path.
"""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from corpus.html_text import html_to_text
from pipeline.config import defaults_from_schema, settings_from

log = logging.getLogger(__name__)

# Elements that never nest what follows them: void elements, and those whose end tag the parser implies
# when a sibling starts. Names are compared on their first 5 letters (frameset shares `frame`'s: rare).
NOT_NESTING = ("area base br col embed hr img input link meta param source track wbr keygen frame basefont bgsound "
               "p li dt dd option optgroup tr td th thead tbody tfoot colgroup caption rb rt rtc rp html head body").split()
_KEY_LEN = 5


def _name_key(name: str) -> int:
    return int.from_bytes(name.encode()[:_KEY_LEN].ljust(_KEY_LEN, b"\0"), "little")


_SKIP_KEYS = np.array(sorted({_name_key(n) for n in NOT_NESTING}), dtype=np.uint64)
_DELIM = np.zeros(256, dtype=bool)
_DELIM[[ord(c) for c in " \t\n\r\f/>"]] = True
_SHIFTS = np.arange(_KEY_LEN, dtype=np.uint64) * np.uint64(8)
_OFFSETS = np.arange(_KEY_LEN)


def dom_depth(html: str) -> tuple[int, int]:
    """(estimated maximum nesting depth, number of nesting start tags) of a page, in time linear in its size."""
    try:
        data = html.encode()
    except UnicodeEncodeError:  # lone surrogates
        data = html.encode("utf-8", "surrogatepass")
    b = np.frombuffer(data, dtype=np.uint8)
    lt = np.flatnonzero(b == 60)  # '<'
    if lt.size == 0:
        return 0, 0
    gt = np.flatnonzero(b == 62)  # '>'
    close = b[np.minimum(lt + 1, b.size - 1)] == 47  # '</'
    raw = b[np.minimum((lt + 1 + close)[:, None] + _OFFSETS, b.size - 1)]
    lower = raw | 32
    is_tag = (lower[:, 0] >= 97) & (lower[:, 0] <= 122)  # '<' + letter (not '<!', '<?', 'a < b')
    ended = np.logical_or.accumulate(_DELIM[raw], axis=1)  # the name ends at its first delimiter
    keys = (np.where(ended, 0, lower).astype(np.uint64) << _SHIFTS).sum(axis=1)
    at = np.minimum(np.searchsorted(_SKIP_KEYS, keys), _SKIP_KEYS.size - 1)
    nests = is_tag & (_SKIP_KEYS[at] != keys)
    nxt = np.searchsorted(gt, lt)  # the '>' ending each tag
    self_closed = b[gt[np.minimum(nxt, gt.size - 1)] - 1] == 47 if gt.size else np.zeros(lt.size, dtype=bool)
    self_closed &= nxt < gt.size  # '/>'
    step = np.where(close, -1, np.where(self_closed, 0, 1)) * nests
    return int(np.cumsum(step).max(initial=0)), int((nests & ~close & ~self_closed).sum())


@dataclass(frozen=True)
@defaults_from_schema("corpus.extract")
class ExtractLimits:
    """Config `corpus.extract` (meanings and defaults in config/schema/corpus.schema.yaml)."""

    time_limit_s: float
    memory_limit_mb: int
    guard_depth: int
    guard_tags: int

    @classmethod
    def from_config(cls, cfg: dict) -> ExtractLimits:
        return settings_from(cls, cfg)

    def suspicious(self, html: str) -> bool:
        """Does this page go to the guarded (child-process, time- and memory-limited) path?"""
        if html.count("<") <= self.guard_depth:
            return False
        depth, tags = dom_depth(html)
        return depth > self.guard_depth or tags > self.guard_tags


def _serve(read_fd: int, write_fd: int, main_content: bool, memory_limit_mb: int) -> None:
    """Child loop: receive HTML, send ("ok", text) / ("memory" | "error", message); None ends it."""
    if memory_limit_mb > 0:
        with open("/proc/self/statm") as f:  # Linux: the child's current address space, in pages
            size = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + memory_limit_mb * 2**20, resource.RLIM_INFINITY))
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    outbox.send(("ready", None))
    while (html := inbox.recv()) is not None:
        try:
            outbox.send(("ok", html_to_text(html, main_content)))
        except MemoryError as e:
            outbox.send(("memory", f"MemoryError {e}"))
        except (ValueError, TypeError) as e:
            # Lexbor parses any input; it fails only when an allocation fails, i.e. at the memory limit here.
            parse_failed = str(e).startswith("Failed to parse HTML") and memory_limit_mb > 0
            outbox.send(("memory", f"{e} (under the {memory_limit_mb} MB limit)") if parse_failed else ("error", str(e)))


class GuardedExtractor:
    """`html_to_text` in a child process under a time and memory limit; restarted after a kill or crash."""

    START_TIMEOUT_S = 120.0  # the child's start (imports) never counts against a page's time limit

    def __init__(self, main_content: bool, limits: ExtractLimits):
        self.main_content, self.limits = main_content, limits
        self._proc: subprocess.Popen | None = None
        self._send = self._recv = None
        self.starts = 0

    def _start(self) -> None:
        # A fresh interpreter (`python -m corpus.extract_guard`), not multiprocessing: spawn re-runs the
        # caller's __main__ module, fork copies a parent that may hold threads and large buffers.
        from_parent, to_child = os.pipe()  # (read end, write end)
        from_child, to_parent = os.pipe()
        memory = self.limits.memory_limit_mb if _has_proc() else 0
        cmd = [sys.executable, "-m", "corpus.extract_guard", str(from_parent), str(to_parent),
               str(int(self.main_content)), str(memory)]
        self._proc = subprocess.Popen(cmd, pass_fds=(from_parent, to_parent), stdin=subprocess.DEVNULL)
        os.close(from_parent)
        os.close(to_parent)
        self._send = Connection(to_child, readable=False)
        self._recv = Connection(from_child, writable=False)
        if not self._recv.poll(self.START_TIMEOUT_S):
            self._kill()
            raise RuntimeError(f"guarded extractor did not start in {self.START_TIMEOUT_S:.0f} s")
        try:
            self._recv.recv()
        except EOFError as e:
            code = self._proc.wait()
            self._kill()
            raise RuntimeError(f"guarded extractor exited at start (exit code {code}): {' '.join(cmd)}") from e

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._send.close()
            self._recv.close()
        self._proc = self._send = self._recv = None

    def extract(self, html: str) -> tuple[str | None, str | None, str]:
        """(text, None, "") or (None, drop reason, message)."""
        if self._proc is None:
            self._start()
            self.starts += 1
        t0 = time.perf_counter()
        try:
            self._send.send(html)
            ready = self._recv.poll(self.limits.time_limit_s)
            status, value = self._recv.recv() if ready else (None, None)
        except (EOFError, OSError):
            proc = self._proc
            self._kill()  # reaps it: a child that died on its own keeps its exit code
            limit = f" under the {self.limits.memory_limit_mb} MB memory limit" if _has_proc() else ""
            return None, "extract_crash", f"extractor process died{limit} (exit code {proc.returncode})"
        if status is None:
            self._kill()
            return None, "extract_timeout", f"extraction took over {self.limits.time_limit_s:g} s (killed)"
        if status == "ok":
            return value, None, ""
        reason = "extract_memory" if status == "memory" else "extract_error"
        log.debug("guarded extraction failed after %.2f s: %s", time.perf_counter() - t0, value)
        return None, reason, value

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._send.send(None)
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill()

    def __enter__(self) -> GuardedExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _has_proc() -> bool:
    try:
        open("/proc/self/statm").close()
    except OSError:
        return False
    return True


if __name__ == "__main__":  # the guarded child: python -m corpus.extract_guard READ_FD WRITE_FD MAIN_CONTENT MEMORY_MB
    _serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4]))
