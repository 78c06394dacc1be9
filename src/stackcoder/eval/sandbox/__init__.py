"""Run untrusted Python programs (HumanEval-style: prompt + completion + tests + ``check(...)``) and say
whether each passed, without letting any of them harm the machine or see what it should not.

Every program is untrusted. Each one runs as a fresh ``python -I`` process (isolated mode: no
``PYTHON*`` variables, no user site, no script directory on ``sys.path``), its source written to
``program.py`` in a fresh temporary directory that is its working directory and ``HOME``, with:

- a wall-clock limit; on expiry its whole process group is killed (SIGKILL), then reaped;
- rlimits set in ``preexec_fn``: address space (RLIMIT_AS), processes (RLIMIT_NPROC), file size
  (RLIMIT_FSIZE), CPU seconds (RLIMIT_CPU), no core dumps;
- a scrubbed environment: a minimal ``PATH``, ``HOME``, ``TMPDIR`` inside its directory, ``LANG``;
  none of the parent's variables, so secrets there cannot be read;
- no network: a new, empty network namespace (loopback down, so even 127.0.0.1 is unreachable) where
  the system allows it: as root directly, as a normal user inside a user namespace. Otherwise the
  program runs after a guard script that makes ``socket.socket`` refuse new sockets and
  ``create_connection``, ``getaddrinfo`` … raise ``PermissionError``: a speed bump, not a wall
  (``ctypes`` or ``_socket`` get past it); ``isolation()`` then reports "blocked-sockets".

Where namespaces can be made, the child also gets, before ``exec``:

- its own PID namespace, with the program as process 1: when it ends or is killed the kernel kills and
  reaps everything it started, including processes that left its group (``setsid``, double fork);
- its own mount namespace in which every mount is read-only, its directory a private tmpfs (sized, so
  it cannot fill the disk, and gone with the namespace), and ``/proc`` showing only its processes;
- ``no_new_privs``, and SIGKILL if its parent dies.

As root (this project's machines) it then drops root: no supplementary groups and a uid/gid of its own
(one per run in flight, from a range no account uses, so the RLIMIT_NPROC cap, which root ignores,
counts per sandbox, and no sandbox can signal another). Directories the interpreter needs but others
may not traverse (``/root/.pyenv``, say) are re-exposed in its mount namespace, the rest of their
parent hidden. The guard against writes outside its directory is that uid: as an unprivileged user the
rest of the filesystem is not writable to it, and the read-only mounts cover what is world-writable
(``/tmp``, ``/dev/shm``) too. Without namespaces only the permissions of the user running the
evaluation protect the filesystem; :func:`isolation` says what is in effect.

The children are started by a launcher, ``launcher.py`` run as ``python -I -S`` once per worker (it is
the child side of this package, stdlib-only and self-contained; this file is the parent): starting a
child with a ``preexec_fn`` forks without vfork, which copies the page tables of the whole parent (200
ms per program from a process holding a 2 GB model); the launcher is small and single-threaded.
Process start dominates the cost (about 15 ms for ``python -I`` on a 2-core VM, the sandbox adds about
1 ms); the child imports nothing beyond what the program does.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict

from stackcoder.eval.sandbox.launcher import (
    CLONE_NEWPID,
    DRAIN_S,
    SANDBOX_PATH,
    UID_BASE,
    UID_SLOTS,
    Limits,
    Outcome,
    _Plan,
)
from stackcoder.eval.sandbox.launcher import KEEP_BYTES as KEEP_BYTES  # what the hostile tests bound

__all__ = ["Limits", "Outcome", "isolation", "run_many", "run_python"]

DEFAULT_LIMITS = Limits()
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")


# ---------------------------------------------------------------------------------------------------
# The launchers: one per worker thread, kept idle between programs (launcher.py says why they exist).


class _Launcher:
    def __init__(self) -> None:
        env = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"}
        if "TMPDIR" in os.environ:  # where the sandbox directories go; a path, not a secret
            env["TMPDIR"] = os.environ["TMPDIR"]
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not a launcher mid-program
        )

    def call(self, request: dict, timeout_s: float) -> dict:
        data = json.dumps(request).encode()
        self.proc.stdin.write(len(data).to_bytes(8, "big") + data)
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout_s
        size = int.from_bytes(self._read(8, deadline), "big")
        return json.loads(self._read(size, deadline))

    def _read(self, n: int, deadline: float) -> bytes:
        fd, buf = self.proc.stdout.fileno(), bytearray()
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        while len(buf) < n:
            if not poll.poll(max(0.0, deadline - time.monotonic()) * 1000):
                raise TimeoutError("the sandbox launcher did not answer")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError("the sandbox launcher exited")
            buf += chunk
        return bytes(buf)

    def close(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.proc.wait(timeout=None if kill else 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_idle: list[_Launcher] = []
_idle_lock = threading.Lock()


def _call(request: dict, timeout_s: float) -> dict:
    """Send one request to an idle launcher (a new one when none is idle)."""
    with _idle_lock:
        launcher = _idle.pop() if _idle else None
    if launcher is None or launcher.owner != os.getpid():  # after a fork: never share its pipes
        launcher = _Launcher()
    try:
        answer = launcher.call(request, timeout_s)
    except BaseException:
        launcher.close(kill=True)
        raise
    with _idle_lock:
        _idle.append(launcher)
    return answer


@atexit.register
def _close_launchers() -> None:
    with _idle_lock:
        launchers = [launcher for launcher in _idle if launcher.owner == os.getpid()]
        _idle.clear()
    for launcher in launchers:
        launcher.close()


# ---------------------------------------------------------------------------------------------------
# Sandbox uids: one per run in flight, so the process cap and kill permissions are per sandbox.


class _Uids:
    def __init__(self) -> None:
        self.free = list(range(UID_SLOTS))
        self.cond = threading.Condition()

    def take(self) -> int:
        with self.cond:
            while not self.free:
                self.cond.wait()
            slot = self.free.pop(0)
        return UID_BASE + os.getpid() * UID_SLOTS + slot

    def give(self, uid: int) -> None:
        with self.cond:
            self.free.append((uid - UID_BASE) % UID_SLOTS)
            self.free.sort()
            self.cond.notify()


_uids = _Uids()


# ---------------------------------------------------------------------------------------------------
# The public API.

_plan: _Plan | None = None
_plan_lock = threading.Lock()


def _get_plan() -> _Plan:
    global _plan
    with _plan_lock:
        if _plan is None:
            uid = _uids.take()
            try:
                fields = _call({"op": "probe", "uid": uid}, 300.0)["plan"]
            finally:
                _uids.give(uid)
            _plan = _Plan(**{**fields, "reveal": tuple(map(tuple, fields["reveal"]))})
        return _plan


def isolation() -> dict[str, str]:
    """What this machine allows, for reports: ``network`` ("namespace" | "blocked-sockets"), ``user``,
    ``filesystem``, ``processes``."""
    plan = _get_plan()
    if plan.drop:
        user = f"dropped from root to sandbox uids {UID_BASE}+ (one per concurrent run), no_new_privs"
    elif os.geteuid() == 0:
        user = "root: could not drop privileges (RLIMIT_NPROC does not apply)"
    else:
        user = f"uid {os.geteuid()} (not root: nothing to drop)"
    if plan.read_only:
        filesystem = "read-only mounts; a private tmpfs working directory"
    else:
        filesystem = "ordinary permissions of that user (world-writable dirs such as /tmp are writable)"
    if plan.namespaces & CLONE_NEWPID:
        processes = "own PID namespace (everything dies with the program); RLIMIT_NPROC"
    else:
        processes = "own process group, killed at the end; RLIMIT_NPROC"
    return {
        "network": "blocked-sockets" if plan.guard else "namespace",
        "user": user,
        "filesystem": filesystem,
        "processes": processes,
    }


def run_python(program: str, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """Run ``program`` (a complete Python script: prompt + completion + tests + check call) in a fresh
    sandboxed process; "passed" iff it exits 0 within the limits."""
    start = time.perf_counter()
    try:
        plan = _get_plan()
    except (OSError, EOFError, ValueError, KeyError) as e:
        return Outcome("error", None, "", f"sandbox: the launcher failed: {e!r}", time.perf_counter() - start)
    uid = _uids.take() if plan.drop else -1
    request = {"op": "run", "plan": asdict(plan), "program": program, "limits": asdict(limits), "uid": uid}
    try:
        for attempt in range(2):  # a launcher that died since its last program gets one replacement
            try:
                return Outcome(**_call(request, limits.timeout_s + DRAIN_S + 60.0))
            except (OSError, EOFError, ValueError) as e:
                if attempt == 1 or isinstance(e, TimeoutError):
                    elapsed = time.perf_counter() - start
                    return Outcome("error", None, "", f"sandbox: the launcher failed: {e!r}", elapsed)
    finally:
        if uid >= 0:
            _uids.give(uid)


def run_many(
    programs: list[str], limits: Limits = DEFAULT_LIMITS, workers: int = 1, progress: bool = False
) -> list[Outcome]:
    """Run many programs, ``workers`` at a time (threads that each wait on one child process); the
    outcomes come back in input order."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    results: list[Outcome | None] = [None] * len(programs)
    if not programs:
        return []
    _get_plan()  # probe once, before the threads start
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(programs), desc="sandbox", unit="program")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        futures = {pool.submit(run_python, p, limits): i for i, p in enumerate(programs)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return results  # type: ignore[return-value]
