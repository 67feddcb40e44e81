"""The `python` tool's sandbox, tested by running real code in it, escape attempts included, each against a real target
(a listening port, files of ours, processes), then checking that the target was not reached."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strata_tool_execution.builtins.python_sandbox import SandboxLimits, SandboxResult, run_python


def processes_in(directory: str) -> list[int]:
    """Pids of processes whose cwd is (or was, before its deletion) `directory` or below it."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                cwd = os.readlink(f"/proc/{entry}/cwd")
                if cwd == directory or cwd.startswith((directory + "/", directory + " (deleted)")):
                    found.append(int(entry))
    return found


def processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(entry))
    return found


def assert_denied(run: SandboxResult) -> None:
    assert run.outcome == "denied", run
    assert "sandbox blocked" in run.detail
    assert run.stderr.rstrip().splitlines()[-1].startswith("PermissionError: sandbox blocked")


def first_line(text: str) -> str:
    return text.splitlines()[0]


class Listener:
    """A TCP server on 127.0.0.1 that counts who reached it."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    target = Listener()
    server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
    target.port = server.sockets[0].getsockname()[1]
    yield target
    server.close()
    await server.wait_closed()


# --- What the tool is for ---------------------------------------------------------------------------------------


async def test_a_computation_returns_its_result_from_the_inputs() -> None:
    run = await run_python(
        "import statistics\nresult = {'total': sum(inputs['numbers']), 'mean': statistics.mean(inputs['numbers'])}",
        {"numbers": [1, 2, 3, 6]},
    )
    assert run.outcome == "ok", run
    assert run.result == {"total": 12, "mean": 3}
    assert run.detail.startswith("finished in ")
    assert run.duration_ms > 0


async def test_result_is_none_when_unset_and_printed_output_is_captured() -> None:
    run = await run_python(
        "import sys\nprint('hello', inputs['who'])\nprint('careful', file=sys.stderr)", {"who": "you"}
    )
    assert run.outcome == "ok", run
    assert run.result is None
    assert run.stdout == "hello you\n"
    assert run.stderr == "careful\n"


async def test_an_exception_is_an_error_with_its_type_and_message() -> None:
    run = await run_python("def check(x):\n    raise ValueError(f'boom {x}')\ncheck(inputs['x'])", {"x": 7})
    assert run.outcome == "error"
    assert run.detail == "ValueError: boom 7"
    assert run.stderr.rstrip().splitlines()[-1] == "ValueError: boom 7"
    assert 'File "<sandbox>", line 2, in check' in run.stderr
    assert run.result is None


async def test_a_syntax_error_is_an_error() -> None:
    run = await run_python("def broken(:\n    pass", {})
    assert run.outcome == "error"
    assert run.detail.startswith("SyntaxError:")
    assert run.stderr.rstrip().splitlines()[-1].startswith("SyntaxError:")


async def test_a_result_that_is_not_json_is_an_error() -> None:
    for code in ("result = {1, 2}", "result = float('nan')", "result = object()"):
        run = await run_python(code, {})
        assert run.outcome == "error", run
        assert run.detail.startswith("result is not JSON-serialisable"), run.detail
        assert run.result is None


async def test_inputs_that_are_not_json_are_refused_without_a_process() -> None:
    run = await run_python("result = 1", {"when": object()})
    assert run.outcome == "error"
    assert run.detail.startswith("inputs are not JSON-serialisable")


async def test_sys_exit_zero_is_a_normal_end_and_other_codes_are_errors() -> None:
    run = await run_python("import sys\nresult = 'done'\nsys.exit(0)", {})
    assert (run.outcome, run.result) == ("ok", "done")
    run = await run_python("import sys\nsys.exit(3)", {})
    assert (run.outcome, run.detail) == ("error", "SystemExit: 3")


async def test_threads_work_inside_the_limits() -> None:
    code = (
        "import threading\nfound = []\n"
        "workers = [threading.Thread(target=found.append, args=(i,)) for i in range(4)]\n"
        "[w.start() for w in workers]\n[w.join() for w in workers]\nresult = sorted(found)"
    )
    run = await run_python(code, {})
    assert (run.outcome, run.result) == ("ok", [0, 1, 2, 3]), run


async def test_runs_do_not_share_anything_when_concurrent() -> None:
    code = "import os\nopen('mine.txt', 'w').write(str(inputs['n']))\nresult = [os.listdir('.'), os.getcwd()]"
    runs = await asyncio.gather(*(run_python(code, {"n": n}) for n in range(5)))
    assert all(run.result[0] == ["mine.txt"] for run in runs), runs
    assert len({run.result[1] for run in runs}) == 5


# --- Limits -------------------------------------------------------------------------------------------------------


async def test_an_infinite_loop_is_killed_at_the_timeout_and_leaves_nothing_behind() -> None:
    run = await run_python(
        "import os\nprint(os.getcwd(), flush=True)\nwhile True:\n    pass", {}, SandboxLimits(timeout_s=1)
    )
    assert run.outcome == "timeout"
    assert run.detail == "killed after 1 s (wall-clock limit)"
    assert 1000 <= run.duration_ms < 3000
    scratch = first_line(run.stdout)  # printed before the loop: unbuffered output survives the kill
    assert not os.path.exists(scratch)
    assert processes_in(scratch) == []


async def test_cancelling_the_caller_kills_the_process_and_removes_the_scratch_dir() -> None:
    token = f"running-{uuid.uuid4().hex}"
    code = f"import time\nopen({token!r}, 'w').close()\ntime.sleep(30)"
    task = asyncio.create_task(run_python(code, {}, SandboxLimits(timeout_s=30)))
    found: list[Path] = []
    for _ in range(250):
        await asyncio.sleep(0.02)
        found = list(Path(tempfile.gettempdir()).glob(f"strata-python-*/{token}"))
        if found:
            break
    assert len(found) == 1
    scratch = str(found[0].parent)
    assert processes_in(scratch) != []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the clean-up goes on, shielded, after the cancellation reached the caller
        if not os.path.exists(scratch):
            break
        await asyncio.sleep(0.02)
    assert not os.path.exists(scratch)
    assert processes_in(scratch) == []


async def test_the_cpu_limit_stops_a_busy_loop_before_the_wall_clock() -> None:
    run = await run_python("while True:\n    pass", {}, SandboxLimits(timeout_s=10, cpu_s=1))
    assert run.outcome == "timeout"
    assert "CPU limit of 1 s" in run.detail
    assert run.duration_ms < 5000


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(10**10)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))",
        "words = []\nwhile True:\n    words.append(' ' * 10**6)",
    ],
    ids=["one-huge-allocation", "growing-bytearrays", "growing-list"],
)
async def test_a_memory_bomb_hits_the_memory_limit(code: str) -> None:
    run = await run_python(code, {}, SandboxLimits(memory_mb=128))
    assert run.outcome == "memory", run
    assert run.detail.startswith("memory limit of 128 MB reached")
    assert run.duration_ms < 5000


@pytest.mark.parametrize(
    ("code", "stream"),
    [
        ("while True:\n    print('x' * 999)", "stdout"),
        ("import sys\nwhile True:\n    sys.stderr.write('y' * 999)", "stderr"),
        ("import os\nwhile True:\n    os.write(1, b'z' * 100_000)", "stdout"),
    ],
    ids=["print", "stderr", "raw-fd"],
)
async def test_huge_output_is_cut_at_the_limit_and_the_process_killed(code: str, stream: str) -> None:
    limits = SandboxLimits(max_output_bytes=50_000, timeout_s=10)
    run = await run_python(code, {}, limits)
    assert run.outcome == "output_limit", run.detail
    captured = run.stdout if stream == "stdout" else run.stderr
    assert len(captured.encode()) == 50_000
    assert run.duration_ms < 5000  # killed as the limit passed, not at the timeout


async def test_the_result_counts_towards_the_output_limit() -> None:
    run = await run_python("print('a' * 1000)\nresult = 'x' * 100_000", {}, SandboxLimits(max_output_bytes=50_000))
    assert run.outcome == "output_limit"
    assert run.result is None
    assert run.stdout == "a" * 1000 + "\n"


async def test_output_and_result_under_the_limit_each_but_over_it_together_is_output_limit() -> None:
    code = "print('a' * 30_000)\nresult = 'x' * 30_000"
    run = await run_python(code, {}, SandboxLimits(max_output_bytes=50_000))
    assert run.outcome == "output_limit", run.detail
    assert run.result is None
    assert run.stdout == "a" * 30_000 + "\n"
    fits = await run_python(code, {}, SandboxLimits(max_output_bytes=70_000))
    assert fits.outcome == "ok", fits.detail
    assert fits.result == "x" * 30_000


async def test_files_are_capped_by_the_file_size_limit() -> None:
    run = await run_python("open('big.bin', 'wb').write(b'x' * 2_000_000)", {}, SandboxLimits(max_file_bytes=1_000_000))
    assert run.outcome == "error"
    assert "File too large" in run.detail


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxLimits(memory_mb=-1)


# --- The scratch directory -----------------------------------------------------------------------------------------


async def test_writing_inside_the_scratch_dir_works_and_the_dir_is_gone_afterwards() -> None:
    code = (
        "import os, pathlib, tempfile, shutil\n"
        "os.makedirs('out/deeper')\n"
        "pathlib.Path('out/deeper/notes.txt').write_text('kept')\n"
        "with tempfile.NamedTemporaryFile('w', delete=False) as handle:\n"
        "    handle.write('temp')\n"
        "shutil.copy('out/deeper/notes.txt', 'copy.txt')\n"
        "os.rename('copy.txt', 'renamed.txt')\n"
        "os.chmod('out', 0)  # the cleanup must cope with this too\n"
        "result = {'cwd': os.getcwd(), 'tmp': tempfile.gettempdir(), 'read': open('renamed.txt').read(),\n"
        "          'listing': sorted(os.listdir('.')), 'temp_in_cwd': os.path.dirname(handle.name) == os.getcwd()}"
    )
    run = await run_python(code, {})
    assert run.outcome == "ok", run
    assert run.result["read"] == "kept"
    assert run.result["tmp"] == run.result["cwd"]
    assert run.result["temp_in_cwd"] is True
    assert "out" in run.result["listing"]
    assert "strata-python-" in run.result["cwd"]
    assert not os.path.exists(run.result["cwd"])


async def test_each_run_starts_in_an_empty_scratch_dir() -> None:
    run = await run_python("import os\nresult = os.listdir('.')", {})
    assert run.result == []


# --- Containment: processes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attempt",
    [
        "os.fork()",
        "import subprocess\nsubprocess.run(['sh', '-c', 'sleep 30 # {marker}'])",
        "os.system('sleep 30 # {marker}')",
        "os.posix_spawn('/bin/sh', ['sh', '-c', 'sleep 30 # {marker}'], {{}})",
        "os.execv('/bin/sh', ['sh', '-c', 'sleep 30 # {marker}'])",
        "import pty\npty.fork()",
        "os.popen('sleep 30 # {marker}')",
        "while True:\n    os.fork()",
    ],
    ids=["fork", "subprocess", "system", "posix_spawn", "exec", "pty", "popen", "fork-bomb"],
)
async def test_starting_a_process_is_denied_and_nothing_is_left_running(attempt: str) -> None:
    marker = f"strata-escape-{uuid.uuid4().hex}"
    run = await run_python("import os\nprint(os.getcwd(), flush=True)\n" + attempt.format(marker=marker), {})
    assert_denied(run)
    scratch = first_line(run.stdout)
    assert processes_mentioning(marker) == []
    assert processes_in(scratch) == []
    assert not os.path.exists(scratch)


async def test_signalling_other_processes_is_denied() -> None:
    for code in (
        "import os\nos.kill(os.getppid(), 0)",
        "import os\nos.killpg(os.getpgid(0), 0)",
        "import os\nos.pidfd_open(os.getppid())",
        "import signal\nsignal.pidfd_send_signal(0, 0)",
    ):
        assert_denied(await run_python(code, {}))


# --- Containment: network ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)",
        "import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1)",
        "import http.client\nhttp.client.HTTPConnection('127.0.0.1', {port}).request('GET', '/')",
        "import asyncio\nasyncio.run(asyncio.open_connection('127.0.0.1', {port}))",
        "import ssl",
    ],
    ids=["socket", "_socket", "urllib", "http.client", "asyncio", "ssl"],
)
async def test_the_network_is_denied(code: str, listener: Listener) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", listener.port)  # the target is reachable from here
    writer.close()
    await writer.wait_closed()
    for _ in range(100):
        if listener.connections:
            break
        await asyncio.sleep(0.02)
    assert listener.connections == 1
    assert_denied(await run_python(code.format(port=listener.port), {}))
    await asyncio.sleep(0.05)
    assert listener.connections == 1


# --- Containment: files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "open('/etc/passwd').read()",
        "import os\nos.open('/etc/passwd', os.O_RDONLY)",
        "import pathlib\npathlib.Path('/etc/passwd').read_bytes()",
        "open(b'/etc/passwd', 'rb').read()",
        "open({this_file!r}).read()",
        "open('/proc/self/environ').read()",
        "import os\nopen(f'/proc/{{os.getppid()}}/environ').read()",
        "import os\nopen(f'/proc/{{os.getppid()}}/cwd/pyproject.toml').read()",
        "import pwd\npwd.getpwall()",
        "import os\nos.listdir('/')",
        "import os\nos.listdir({this_dir!r})",
        "import os\nos.chdir('/')",
        "import os\nos.chdir('..')",
        "open('../../etc/passwd').read()",
        "import os\nos.symlink('/etc/passwd', 'link')\nopen('link').read()",
        "import os\nos.link('/etc/passwd', 'hard')",
        "import json, os\nos.open(os.path.dirname(json.__file__), os.O_RDONLY)",
    ],
    ids=[
        "etc-passwd",
        "os.open",
        "pathlib",
        "bytes-path",
        "this-test-file",
        "own-environ",
        "parent-environ",
        "parent-cwd",
        "pwd",
        "list-root",
        "list-tests",
        "chdir-root",
        "chdir-up",
        "relative-up",
        "symlink",
        "hardlink",
        "stdlib-dir-fd",
    ],
)
async def test_reading_outside_the_sandbox_is_denied(code: str) -> None:
    this_file = str(Path(__file__).resolve())
    assert_denied(await run_python(code.format(this_file=this_file, this_dir=os.path.dirname(this_file)), {}))


@pytest.mark.parametrize(
    "code",
    [
        "open({target!r}, 'w').write('escaped')",
        "open({target!r}, 'a').write('escaped')",
        "import os\nos.close(os.open({target!r}, os.O_CREAT | os.O_WRONLY))",
        "import pathlib\npathlib.Path({target!r}).touch()",
        "import os\nos.mkdir({target!r})",
        "import os\nos.mknod({target!r})",
        "import os\nos.mkfifo({target!r})",
        "import shutil\nopen('here.txt', 'w').write('x')\nshutil.copy('here.txt', {target!r})",
        "import os\nopen('here.txt', 'w').write('x')\nos.rename('here.txt', {target!r})",
        "import os\nfd = os.open('.', os.O_RDONLY)\nos.makedirs('a/b')\nos.chdir('a/b')\n"
        "os.open('../../' + os.path.basename({target!r}), os.O_CREAT | os.O_WRONLY, dir_fd=fd)",
    ],
    ids=["open-w", "open-a", "os.open", "touch", "mkdir", "mknod", "mkfifo", "copy-out", "rename-out", "dir-fd-trick"],
)
async def test_writing_outside_the_scratch_dir_is_denied_and_nothing_is_created(code: str) -> None:
    target = f"/tmp/escape-{uuid.uuid4().hex}"
    try:
        assert_denied(await run_python(code.format(target=target), {}))
        assert not os.path.lexists(target)
    finally:
        with contextlib.suppress(OSError):
            os.remove(target)
        with contextlib.suppress(OSError):
            os.rmdir(target)


async def test_changing_files_outside_the_scratch_dir_is_denied(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    victim.chmod(0o644)
    for code in (
        "import os\nos.remove({victim!r})",
        "import os\nos.truncate({victim!r}, 0)",
        "import os\nos.chmod({victim!r}, 0o777)",
        "import os\nos.utime({victim!r}, (0, 0))",
        "import shutil\nshutil.rmtree({parent!r})",
        # An fd of a standard-library file may be opened for reading, but not used to change it.
        "import json, os\nfd = os.open(json.__file__, os.O_RDONLY)\nos.fchmod(fd, os.fstat(fd).st_mode & 0o7777)",
    ):
        assert_denied(await run_python(code.format(victim=str(victim), parent=str(tmp_path)), {}))
    assert victim.read_text() == "original"
    assert victim.stat().st_mode & 0o777 == 0o644


# --- Containment: the interpreter ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "import ctypes",
        "import _ctypes",
        "from ctypes import CDLL\nCDLL(None)",
        "import ctypes.util",
        "import _xxsubinterpreters",
        "import sqlite3",
        "import multiprocessing",
        "import gc\ngc.get_objects()",
        "import sys\nsys.settrace(lambda *args: None)",
        "import sys\nsys._current_frames()",
        "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1000, 1000))",
        "import _imp, importlib.machinery\n_imp.create_builtin(importlib.machinery.ModuleSpec('posix', None))",
        # An extension module written into the scratch dir must not load (it would run native code unaudited).
        "import importlib.machinery, importlib.util\nname = 'evil' + importlib.machinery.EXTENSION_SUFFIXES[0]\n"
        "open(name, 'wb').write(b'\\x7fELF')\n"
        "importlib.util.module_from_spec(importlib.util.spec_from_file_location('evil', name))",
        # ...nor a denied standard-library extension under another package name.
        "import _json, importlib.util\nname = _json.__file__.replace('_json', '_socket')\n"
        "importlib.util.module_from_spec(importlib.util.spec_from_file_location('pkg._socket', name))",
    ],
    ids=[
        "ctypes",
        "_ctypes",
        "ctypes-cdll",
        "ctypes-util",
        "subinterpreters",
        "sqlite3",
        "multiprocessing",
        "gc-objects",
        "settrace",
        "current-frames",
        "raise-rlimit",
        "fresh-posix",
        "extension-from-scratch",
        "renamed-extension",
    ],
)
async def test_escaping_through_the_interpreter_is_denied(code: str) -> None:
    assert_denied(await run_python(code, {}))


async def test_a_second_audit_hook_is_never_installed() -> None:
    # CPython swallows a hook's refusal of sys.addaudithook (it is an Exception), but the new hook is not added.
    code = (
        "import sys\nseen = []\nsys.addaudithook(lambda event, args: seen.append(event))\n"
        "open('probe.txt', 'w').close()\nresult = seen"
    )
    run = await run_python(code, {})
    assert (run.outcome, run.result) == ("ok", []), run


async def test_patching_builtins_and_os_does_not_weaken_the_hook() -> None:
    code = (
        "import builtins, os, posixpath\n"
        "builtins.isinstance = lambda *args: True\nbuiltins.issubclass = lambda *args: True\n"
        "builtins.len = lambda *args: 0\nposixpath.realpath = lambda path, **kwargs: os.getcwd()\n"
        "os.stat_result.__getitem__ = lambda *args: 0\n"
        "class Sneaky(str):\n"
        "    def startswith(self, *args): return True\n"
        "    def split(self, *args): return ['inside']\n"
        "    def __contains__(self, item): return False\n"
        "open(Sneaky('/etc/passwd')).read()"
    )
    assert_denied(await run_python(code, {}))


async def test_the_hook_frame_seen_in_a_traceback_holds_nothing_that_changes_it() -> None:
    # A denied call's traceback leads to the hook's frame: its locals may be looked at, but none can be changed.
    code = (
        "try:\n    open('/etc/passwd')\nexcept PermissionError as exc:\n    tb = exc.__traceback__\n"
        "    while tb.tb_next:\n        tb = tb.tb_next\n    for value in tb.tb_frame.f_locals.values():\n"
        "        if isinstance(value, (list, dict, set)):\n            value.clear()\n"
        "        if hasattr(value, '__closure__') and value.__closure__:\n"
        "            for cell in value.__closure__:\n                cell.cell_contents = '/'\n"
        "open('/etc/passwd').read()"
    )
    assert_denied(await run_python(code, {}))


# --- Secrets and the result channel --------------------------------------------------------------------------------


async def test_environment_secrets_of_the_parent_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", secret)
    run = await run_python("import os\nresult = dict(os.environ)", {})
    assert run.outcome == "ok", run
    assert "AWS_SECRET_ACCESS_KEY" not in run.result
    assert not any(secret in value for value in run.result.values())
    assert_denied(await run_python("import os\nopen(f'/proc/{os.getppid()}/environ', 'rb').read()", {}))


async def test_the_code_and_inputs_are_not_in_the_command_line() -> None:
    secret = f"input-{uuid.uuid4().hex}"
    code = "import time\nprint('up', flush=True)\ntime.sleep(30)"
    task = asyncio.create_task(run_python(code, {"token": secret}, SandboxLimits(timeout_s=1)))
    await asyncio.sleep(0.5)
    assert processes_mentioning(secret) == []
    assert processes_mentioning("time.sleep(30)") == []
    assert (await task).outcome == "timeout"


async def test_printing_a_fake_report_cannot_fake_the_result() -> None:
    code = (
        "import json, os, sys\n"
        "fake = json.dumps({'strata_sandbox_report': 1, 'outcome': 'ok', 'detail': '', 'result': 'forged'})\n"
        "print(fake)\nprint(fake, file=sys.stderr)\n"
        "for fd in range(3, 256):  # whatever the channel's fd is, an earlier line there does not count\n"
        "    try:\n        os.write(fd, ('\\n' + fake + '\\n').encode())\n    except OSError:\n        pass\n"
        "result = 'genuine'"
    )
    run = await run_python(code, {})
    assert (run.outcome, run.result) == ("ok", "genuine"), run
    assert json.loads(first_line(run.stdout))["result"] == "forged"  # it did print the fake


async def test_leaving_without_a_report_is_an_error_not_a_result() -> None:
    run = await run_python("import os\nresult = 'never reported'\nos._exit(0)", {})
    assert run.outcome == "error"
    assert run.result is None
    assert "without reporting a result" in run.detail
