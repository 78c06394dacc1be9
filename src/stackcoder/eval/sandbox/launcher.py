"""The sandbox's launcher and everything that runs below it (see ``stackcoder.eval.sandbox`` for the
isolation model): this file is run as ``python -I -S -B launcher.py``, once per worker of the
evaluation process, and reads requests on stdin. For each program it forks a child, which sets up the
namespaces, mounts, rlimits and uid between fork and exec (``_ChildSetup``), watches it with bounded
output (``_watch``), kills and reaps it and removes its directory (``_run``). It also probes what this
machine allows (``_probe``).

Run with ``-I -S``, it must stay self-contained and import the standard library only: never
``stackcoder``. The parent side (``__init__.py``) imports it for its dataclasses and constants; this
file never imports the parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock; on expiry the whole process group is killed
    memory_mb: int = 1024  # RLIMIT_AS
    processes: int = 64  # RLIMIT_NPROC, for the sandbox's own uid when root (root itself ignores it)
    file_size_mb: int = 16  # RLIMIT_FSIZE
    cpu_s: int | None = None  # RLIMIT_CPU, default: ceil(timeout_s) + 1

    @property
    def cpu_seconds(self) -> int:
        return self.cpu_s if self.cpu_s is not None else math.ceil(self.timeout_s) + 1


@dataclass
class Outcome:
    status: str  # "passed" | "failed" | "timeout" | "error" ("error": the sandbox itself could not run)
    exit_code: int | None  # negative: killed by that signal
    stdout: str  # the first and last few KB
    stderr: str
    seconds: float


KEEP_BYTES = 4096  # of each stream, at the start and again at the end (tracebacks come last)
DRAIN_S = 2.0  # after the program ended: how long to wait for its output pipes to close
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"

# Linux constants (<sched.h>, <sys/mount.h>, <linux/mount.h>, <sys/prctl.h>)
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 8192, 16384, 1 << 18
SYS_MOUNT_SETATTR, AT_FDCWD, AT_RECURSIVE = 442, -100, 0x8000  # 442 on x86-64 and arm64 alike
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 0x1, 0x2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

# Sandbox uids: unused by any account, one per (parent pid, concurrent slot), below 2**31.
UID_BASE, UID_SLOTS = 1_000_000_000, 200

# The fallback when no network namespace can be made: run after this guard, which the untrusted code
# could undo (ctypes, subprocess to curl); isolation() says so.
SOCKET_GUARD = """\
import socket as _socket_module, _socket
def _no_network(*args, **kwargs):
    raise PermissionError(1, "network access is disabled in the sandbox")
class _GuardedSocket(_socket_module.socket):  # a class still, so ssl and asyncio can subclass it
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None:  # wrapping an existing descriptor (socketpair) is fine, a new one is not
            _no_network()
        super().__init__(family, type, proto, fileno)
_socket_module.socket = _GuardedSocket  # not _socket.socket: socket.socket.__init__ calls it
for _name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
              "gethostbyaddr", "getnameinfo"):
    setattr(_socket_module, _name, _no_network)
    setattr(_socket, _name, _no_network)
del _socket_module, _socket, _name
import runpy
runpy.run_path("program.py", run_name="__main__")
"""


# ---------------------------------------------------------------------------------------------------
# What this machine allows: probed once, by running a trivial program under each plan in turn.


@dataclass(frozen=True)
class _Plan:
    namespaces: int = 0  # CLONE_* flags for the child (CLONE_NEWPID: see _spawn and supervise)
    read_only: bool = False  # mount namespace: read-only mounts, tmpfs working directory, fresh /proc
    drop: bool = False  # root: switch to a sandbox uid
    reveal: tuple[tuple[str, str, bool], ...] = ()  # (untraversable dir, needed child, child is a dir)
    guard: bool = False  # no network namespace: block sockets in Python
    base: str = "/tmp"  # where the temporary directories go


_libc = None


def _libc_fn():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _traversable(path: str) -> bool:
    """Whether a uid in no group of ``path`` may pass through (dirs) or read and run (files) it."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    need = stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else stat.S_IROTH
    return bool(st.st_mode & need)


def _needed_paths() -> list[str]:
    exe = os.path.abspath(sys.executable)
    paths = {os.path.realpath(exe), os.path.dirname(exe), sys.prefix, sys.base_prefix, sys.exec_prefix}
    paths |= {sys.base_exec_prefix, os.path.dirname(os.path.dirname(exe))}
    return sorted(os.path.realpath(p) for p in paths)


def _reveal_plan(paths: list[str]) -> tuple[tuple[str, str, bool], ...] | None:
    """The (dir, child) pairs to re-expose so another uid reaches ``paths``, top down; None when a
    needed path itself is unreadable (re-exposing ancestors cannot help)."""
    pairs: dict[tuple[str, str], bool] = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(len(parts)):
            parent = "/" + "/".join(parts[:i])
            child = os.path.join(parent, parts[i])
            if not _traversable(parent):
                pairs[(parent, parts[i])] = os.path.isdir(child)
        if not _traversable(path):
            return None
    return tuple(
        (d, c, is_dir) for (d, c), is_dir in sorted(pairs.items(), key=lambda kv: kv[0][0].count("/"))
    )


def _temp_base() -> str | None:
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(base) and _traversable(base) and os.access(base, os.W_OK):
            return base
    return None


def _candidates() -> list[_Plan]:
    base = _temp_base() or tempfile.gettempdir()
    if sys.platform != "linux":
        return [_Plan(guard=True, base=base)]
    paths = _needed_paths() + [base]
    reachable = all(_traversable(p) for p in paths) and _reveal_plan(paths) == ()
    net_pid = CLONE_NEWNET | CLONE_NEWPID
    if os.geteuid() == 0:
        reveal = _reveal_plan(_needed_paths())
        plans = []
        if reveal is not None:
            plans.append(_Plan(net_pid | CLONE_NEWNS, read_only=True, drop=True, reveal=reveal, base=base))
        plans.append(_Plan(net_pid | CLONE_NEWNS, read_only=True, base=base))
        plans.append(_Plan(net_pid, drop=reachable, base=base))
        plans.append(_Plan(net_pid, base=base))
        plans.append(_Plan(guard=True, drop=reachable, base=base))
        plans.append(_Plan(guard=True, base=base))
        return plans
    user = CLONE_NEWUSER | net_pid
    return [
        _Plan(user | CLONE_NEWNS, read_only=True, base=base),
        _Plan(user, base=base),
        _Plan(CLONE_NEWUSER | CLONE_NEWNET, base=base),
        _Plan(guard=True, base=base),
    ]


def _probe(uid: int) -> _Plan:
    """The strongest plan under which a trivial program runs (in the launcher; ``uid`` to drop to)."""
    probe = Limits(timeout_s=20.0)
    for plan in _candidates():
        if _run(plan, "import sys\nsys.exit(0)\n", probe, uid if plan.drop else -1).status == "passed":
            return plan
    return _Plan(guard=True, base=tempfile.gettempdir())


# ---------------------------------------------------------------------------------------------------
# The child: everything between fork and exec, in the forked copy of the launcher. It works on values
# prepared beforehand and makes system calls; nothing here imports or allocates much.


class _ChildSetup:
    def __init__(self, plan: _Plan, limits: Limits, workdir: str, uid: int, source: bytes) -> None:
        self.plan, self.workdir, self.uid, self.source = plan, workdir, uid, source
        self.libc = _libc_fn() if sys.platform == "linux" else None
        # a new PID namespace takes effect for the children of the process that makes it: as root the
        # launcher makes it before forking us; in a user namespace we must fork once more ourselves
        self.supervised = bool(plan.namespaces & CLONE_NEWPID and plan.namespaces & CLONE_NEWUSER)
        mb = 1024 * 1024
        self.rlimits = [
            (resource.RLIMIT_AS, limits.memory_mb * mb),
            (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NPROC, limits.processes),
        ]
        owner = uid if plan.drop else os.geteuid()
        group = uid if plan.drop else os.getegid()
        self.owner, self.group = owner, group
        # the working directory's tmpfs: room for a few files at the size limit, bounded inode count
        size_mb = max(64, 4 * limits.file_size_mb)
        self.tmpfs_opts = f"size={size_mb}m,nr_inodes=16384,mode=0700,uid={owner},gid={group}".encode()
        self.uid_map = f"{os.geteuid()} {os.geteuid()} 1".encode()
        self.gid_map = f"{os.getegid()} {os.getegid()} 1".encode()
        if plan.read_only:
            # mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &{attr_set, attr_clr, propagation, userns_fd}, 32)
            self.attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
            c = ctypes
            self.setattr_args = (
                c.c_long(SYS_MOUNT_SETATTR),
                c.c_int(AT_FDCWD),
                c.c_char_p(b"/"),
                c.c_uint(AT_RECURSIVE),
                c.byref(self.attr),
                c.c_size_t(ctypes.sizeof(self.attr)),
            )

    def __call__(self) -> None:
        plan = self.plan
        if plan.namespaces:
            self.namespaces()
        if self.supervised:
            self.supervise()  # returns in the new child, process 1 of the new PID namespace
        if plan.read_only and plan.namespaces & CLONE_NEWPID:
            # only this sandbox's processes in /proc; best effort (not allowed in every setup)
            self.libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        for which, value in self.rlimits:
            resource.setrlimit(which, (value, value))
        os.chdir(self.workdir)
        self.drop_privileges()

    def namespaces(self) -> None:
        libc, plan = self.libc, self.plan
        # as root the launcher has already put us into a new PID namespace (see _spawn)
        flags = plan.namespaces if self.supervised else plan.namespaces & ~CLONE_NEWPID
        _check(libc.unshare(flags), "unshare")
        if plan.namespaces & CLONE_NEWUSER:  # map our own ids, so files we create are ours
            for path, data in (("/proc/self/setgroups", b"deny"), ("/proc/self/uid_map", self.uid_map)):
                fd = os.open(path, os.O_WRONLY)
                os.write(fd, data)
                os.close(fd)
            fd = os.open("/proc/self/gid_map", os.O_WRONLY)
            os.write(fd, self.gid_map)
            os.close(fd)
        if not plan.read_only:
            return
        # first of all: nothing done below may propagate back to the parent's mounts
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        for parent, child, is_dir in plan.reveal:
            # bind the needed child aside (onto our still-empty workdir), cover its parent with an
            # empty tmpfs, and move the child back into it: the rest of the parent stays hidden
            full = os.path.join(parent, child).encode()
            stage = self.workdir.encode()
            if not is_dir:
                stage = os.path.join(self.workdir, "stage").encode()
                os.close(os.open(stage, os.O_CREAT | os.O_WRONLY, 0o644))
            _check(libc.mount(full, stage, None, MS_BIND | MS_REC, None), "bind")
            _check(
                libc.mount(b"tmpfs", parent.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=64k"),
                "tmpfs",
            )
            if is_dir:
                os.mkdir(full, 0o755)
            else:
                os.close(os.open(full, os.O_CREAT | os.O_WRONLY, 0o644))
            _check(libc.mount(stage, full, None, MS_MOVE, None), "move")
        _check(libc.syscall(*self.setattr_args), "mount_setattr")  # all of it read-only, recursively
        work = self.workdir.encode()
        _check(libc.mount(b"tmpfs", work, b"tmpfs", MS_NOSUID | MS_NODEV, self.tmpfs_opts), "tmpfs")
        fd = os.open(os.path.join(self.workdir, "program.py"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        view = memoryview(self.source)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)
        tmp = os.path.join(self.workdir, "tmp")
        os.mkdir(tmp, 0o700)
        os.chown(tmp, self.owner, self.group)

    def supervise(self) -> None:
        """Fork: the child becomes process 1 of the new PID namespace and goes on to exec; this process
        stays behind as the one ``Popen`` sees, waits, and exits as the child did."""
        pid = os.fork()
        if pid == 0:
            return
        code = 255
        try:
            os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # incl. Popen's error pipe
            self.drop_privileges()
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                signal.signal(sig, signal.SIG_DFL)
                os.kill(os.getpid(), sig)
                code = 128 + sig
            else:
                code = os.waitstatus_to_exitcode(status)
        finally:
            os._exit(code)

    def drop_privileges(self) -> None:
        if self.plan.drop:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        if self.libc is not None:
            zero = ctypes.c_ulong(0)
            self.libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero)
            # after setuid, which clears it; the parent is the launcher's only thread (or supervise)
            self.libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), zero, zero, zero)


# ---------------------------------------------------------------------------------------------------
# One program, in the launcher: start, watch (output kept bounded), kill, reap, clean up.


class _Kept:
    """The first and last KEEP_BYTES of a stream, however much of it there is."""

    def __init__(self) -> None:
        self.head, self.tail, self.total = bytearray(), bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = KEEP_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > KEEP_BYTES:
                del self.tail[: len(self.tail) - KEEP_BYTES]

    def text(self) -> str:
        cut = self.total - len(self.head) - len(self.tail)
        middle = f"\n[... {cut} bytes not kept ...]\n".encode() if cut else b""
        return bytes(self.head + middle + self.tail).decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen) -> None:
    # only before the process is reaped: until then its pid (= its group id) cannot be reused
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _watch(proc: subprocess.Popen, timeout_s: float) -> tuple[_Kept, _Kept, bool]:
    """Read both pipes (keeping only their ends) until the program ends or its time is up."""
    out, err = _Kept(), _Kept()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        pidfd = os.pidfd_open(proc.pid)  # readable once the process has ended (Linux 5.3+)
        sel.register(pidfd, selectors.EVENT_READ, None)
    except (AttributeError, OSError):
        pidfd = None
    deadline = time.monotonic() + timeout_s
    ended = timed_out = False
    drain_until = None
    open_pipes = 2
    try:
        while open_pipes or not ended:  # (a program may close its pipes and run on)
            now = time.monotonic()
            if drain_until is None and now >= deadline:
                timed_out = True
                _kill_group(proc)
                drain_until = now + DRAIN_S
            if drain_until is not None and now >= drain_until:
                break
            wait = (drain_until or deadline) - now
            if pidfd is None and not ended:
                wait = min(wait, 0.01)
            for key, _ in sel.select(max(wait, 0.0)):
                if key.data is None:
                    sel.unregister(key.fileobj)
                    ended = True
                    continue
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    key.data.add(chunk)
                else:
                    sel.unregister(key.fileobj)
                    open_pipes -= 1
            if pidfd is None and not ended:
                ended = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
            if ended and drain_until is None:
                _kill_group(proc)  # what it left running (in its own PID namespace: already gone)
                drain_until = time.monotonic() + DRAIN_S
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        _kill_group(proc)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return out, err, timed_out


def _remove(path: str) -> None:
    def make_writable(func, p, _exc) -> None:
        # a sandbox running as our own uid may have left directories without write permission
        os.chmod(os.path.dirname(p), 0o700)
        func(p)

    shutil.rmtree(path, onerror=make_writable)


_own_pid_ns: int | None = None


def _spawn(
    plan: _Plan, args: list[str], cwd: str, env: dict[str, str], setup: _ChildSetup
) -> subprocess.Popen:
    """Start the child; as root, as process 1 of a new PID namespace: the launcher (single-threaded)
    points its next child there, forks it, and points itself back."""
    global _own_pid_ns
    in_new_pid_ns = bool(plan.namespaces & CLONE_NEWPID) and not setup.supervised
    if in_new_pid_ns:
        if _own_pid_ns is None:
            _own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        _check(setup.libc.unshare(CLONE_NEWPID), "unshare")
    try:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=setup,
        )
    finally:
        if in_new_pid_ns:
            _check(setup.libc.setns(_own_pid_ns, CLONE_NEWPID), "setns")


def _run(plan: _Plan, program: str, limits: Limits, uid: int) -> Outcome:
    """Run one program under ``plan`` (in the launcher), as ``uid`` when the plan drops root."""
    start = time.perf_counter()
    tmpdir = None
    try:
        tmpdir = tempfile.mkdtemp(prefix="stackcoder-sandbox-", dir=plan.base)
        source = program.encode("utf-8", "surrogatepass")
        if plan.read_only:
            os.chmod(tmpdir, 0o755)  # the mount point; the tmpfs over it gets its own owner and mode
        else:  # the parent prepares the directory, as the files the child will see
            with open(os.path.join(tmpdir, "program.py"), "wb") as f:
                f.write(source)
            os.mkdir(os.path.join(tmpdir, "tmp"), 0o700)
            if plan.drop:
                for p in (tmpdir, os.path.join(tmpdir, "tmp")):
                    os.chown(p, uid, uid)
        if plan.guard:
            with open(os.path.join(tmpdir, "guard.py"), "w") as f:
                f.write(SOCKET_GUARD)
        script = "guard.py" if plan.guard else "program.py"
        env = {"PATH": SANDBOX_PATH, "HOME": tmpdir, "TMPDIR": os.path.join(tmpdir, "tmp"), "LANG": "C.UTF-8"}
        try:
            proc = _spawn(
                plan,
                [sys.executable, "-I", "-B", os.path.join(tmpdir, script)],
                tmpdir,
                env,
                _ChildSetup(plan, limits, tmpdir, uid, source),
            )
        except (OSError, subprocess.SubprocessError) as e:
            return Outcome("error", None, "", f"sandbox: could not start the program: {e}", 0.0)
        out, err, timed_out = _watch(proc, limits.timeout_s)
        code = proc.returncode
        # over RLIMIT_CPU (SIGXCPU) is out of time too
        timeout = timed_out or code == -signal.SIGXCPU
        status = "timeout" if timeout else "passed" if code == 0 else "failed"
        return Outcome(status, code, out.text(), err.text(), time.perf_counter() - start)
    except OSError as e:
        return Outcome("error", None, "", f"sandbox: {e}", time.perf_counter() - start)
    finally:
        if tmpdir is not None:
            _remove(tmpdir)


# ---------------------------------------------------------------------------------------------------
# The launcher: this file run as ``python -I -S launcher.py``, a small process that starts the sandboxes.
# Starting a child with a preexec_fn forks (no vfork), and a fork copies the page tables of the whole
# process: from an evaluation process holding a 2 GB model that alone took 200 ms per program. The
# launcher is started once per worker with vfork and forks cheaply from then on; it is single-threaded,
# so the fork-and-preexec dance never meets a lock held by another thread either.


def _serve() -> None:
    """The launcher's loop: length-prefixed JSON requests on stdin, answers on the original stdout,
    until stdin closes (the parent is done, or gone)."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    requests = sys.stdin.buffer
    while True:
        header = requests.read(8)
        if len(header) < 8:
            return
        request = json.loads(requests.read(int.from_bytes(header, "big")))
        if request["op"] == "probe":
            answer = {"plan": asdict(_probe(request["uid"]))}
        else:
            plan = _Plan(**{**request["plan"], "reveal": tuple(map(tuple, request["plan"]["reveal"]))})
            try:
                outcome = _run(plan, request["program"], Limits(**request["limits"]), request["uid"])
            except Exception as e:  # a bug here must not take the launcher down with it
                outcome = Outcome("error", None, "", f"sandbox: {e!r}", 0.0)
            answer = asdict(outcome)
        data = json.dumps(answer).encode()
        answers.write(len(data).to_bytes(8, "big") + data)
        answers.flush()


if __name__ == "__main__":
    _serve()
