"""One cgroup per sandbox run: a single memory bound and process bound for all of a run's processes.

`CgroupSetup.find()` locates where this process may create cgroups (cgroup v2 with the memory and
pids controllers, or the v1 memory and pids hierarchies), below the cgroup this process is in, so the
container's own limits still apply above. `CgroupSetup.run(memory_mb, max_processes)` creates the
run's group(s) and removes them afterwards, killing whatever is still in them first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PARENT = "mathpipe-sandbox"


@dataclass(frozen=True)
class CgroupSetup:
    version: str  # "v2" or "v1"
    bases: tuple[str, ...]  # v2: (base,); v1: (memory base, pids base)

    @staticmethod
    def find() -> tuple[CgroupSetup | None, str]:
        """(setup, "") where per-run cgroups work, else (None, why not)."""
        mounts = _cgroup_mounts()
        own = _own_cgroups()
        reasons = []
        if "cgroup2" in mounts and "" in own:
            base = os.path.join(mounts["cgroup2"], own[""].lstrip("/"), PARENT)
            setup = CgroupSetup("v2", (base,))
            why = setup._try()
            if not why:
                return setup, ""
            reasons.append(f"cgroup v2 at {base}: {why}")
        if "memory" in mounts and "pids" in mounts:
            bases = tuple(os.path.join(mounts[c], own.get(c, "/").lstrip("/"), PARENT) for c in ("memory", "pids"))
            setup = CgroupSetup("v1", bases)
            why = setup._try()
            if not why:
                return setup, ""
            reasons.append(f"cgroup v1 at {bases}: {why}")
        if not reasons:
            reasons.append("no cgroup v2 or v1 memory+pids hierarchy is mounted")
        return None, "; ".join(reasons)

    def _try(self) -> str:
        try:
            with self.run(64, 4):
                pass
        except OSError as e:
            return str(e)
        self.sweep_stale()
        return ""

    @contextlib.contextmanager
    def run(self, memory_mb: int, max_processes: int):
        """Create the run's groups with their limits; yield the cgroup.procs files the program joins."""
        name = f"run-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        dirs = []
        try:
            for base in self.bases:
                if not os.path.isdir(base):
                    os.makedirs(base, exist_ok=True)
                    if self.version == "v2":
                        _write(os.path.join(base, "cgroup.subtree_control"), "+memory +pids")
                d = os.path.join(base, name)
                os.mkdir(d)
                dirs.append(d)
            for d in dirs:
                for fname, value in self._limits(d, memory_mb, max_processes):
                    _write(os.path.join(d, fname), value)
            yield [os.path.join(d, "cgroup.procs") for d in dirs]
        finally:
            remove(dirs)

    def _limits(self, d: str, memory_mb: int, max_processes: int):
        mem = str(memory_mb << 20)
        if self.version == "v2":
            return [("memory.max", mem), ("memory.swap.max", "0"), ("pids.max", str(max_processes))]
        if os.path.exists(os.path.join(d, "memory.limit_in_bytes")):
            limits = [("memory.limit_in_bytes", mem)]
            if os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
                limits.append(("memory.memsw.limit_in_bytes", mem))  # no escape into swap
            return limits
        return [("pids.max", str(max_processes))]

    def sweep_stale(self) -> None:
        """Remove run groups whose creating process is gone (a crashed caller), killing what is in them."""
        for base in self.bases:
            with contextlib.suppress(OSError):
                for entry in os.listdir(base):
                    parts = entry.split("-")
                    if len(parts) == 3 and parts[0] == "run" and parts[1].isdigit() and not _alive(int(parts[1])):
                        remove([os.path.join(base, entry)])


def remove(dirs: list[str]) -> None:
    """Stop forks, SIGKILL every member until none is left, then remove the groups."""
    for d in dirs:
        with contextlib.suppress(OSError):
            _write(os.path.join(d, "pids.max"), "0")
        with contextlib.suppress(OSError):
            _write(os.path.join(d, "cgroup.kill"), "1")
    for _ in range(1000):
        members = []
        for d in dirs:
            with contextlib.suppress(OSError):
                members += [int(x) for x in Path(d, "cgroup.procs").read_text().split()]
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        left = []
        for d in dirs:
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(d)  # EBUSY while killed members are still exiting
        if not left:
            return
        dirs = left
        time.sleep(0.002)
    raise OSError(f"cgroups {dirs} could not be emptied and removed")


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cgroup_mounts() -> dict[str, str]:
    """{"cgroup2": mountpoint} and {controller: mountpoint} for v1 hierarchies."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            mountpoint = fields[4]
            if rfields[0] == "cgroup2":
                found.setdefault("cgroup2", mountpoint)
            elif rfields[0] == "cgroup":
                for opt in rfields[2].split(","):
                    if opt in ("memory", "pids"):
                        found.setdefault(opt, mountpoint)
    return found


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" its v2 path."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path
    return own
