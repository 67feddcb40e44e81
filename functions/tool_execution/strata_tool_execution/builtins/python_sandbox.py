"""The `python` built-in tool's sandbox: untrusted code runs in a separate, limited interpreter process, never in ours.

Why each layer is there (a Lambda has no root, namespaces or containers, so the operating system offers only a
fresh process, resource limits and a process group; everything finer-grained is done by CPython's audit hooks):

* Process. ``sys.executable -I -S -B -u -X utf8 -c <bootstrap>``: isolated mode (no environment variables read, no
  user site, no script directory on ``sys.path``), no ``site`` (so no site-packages: the code sees the standard library
  only), no bytecode writes, unbuffered output (a killed process loses nothing it printed). The environment is
  replaced by a minimal one (no AWS credentials or any other secret of ours). The cwd is a fresh ``mkdtemp`` scratch
  directory that is deleted afterwards, also after a timeout, a kill, or the caller's cancellation. The process starts
  its own session, so ``os.killpg`` reaches everything it could have started.
* Limits. The bootstrap sets RLIMIT_CORE=0, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC (the user's task
  count now plus a small headroom for threads, so a fork bomb has nowhere to go) and RLIMIT_AS before any user code
  runs, hard limits included (the CPU one a second above the soft one, so that SIGXCPU comes first). It does so in
  the child itself rather than in a ``preexec_fn``, which CPython documents as unsafe in a threaded parent such as
  ours. Wall-clock time and output volume are enforced here: the group is SIGKILLed when the timeout passes or when
  stdout + stderr + the result channel pass ``max_output_bytes`` (read incrementally; nothing past the limit is
  buffered).
* Audit hook. Before the user code runs, the bootstrap installs a ``sys.addaudithook`` hook that raises
  PermissionError for: process creation and signalling (``os.system``, ``os.exec``, ``os.fork``, ``os.forkpty``,
  ``os.posix_spawn``, ``subprocess.Popen``, ``os.kill``, ``os.killpg``...), every ``socket.*`` and ``ctypes.*`` event,
  importing ctypes, socket, ssl, subprocess, multiprocessing and other escape hatches (by the ``import`` event's module
  name, and extension modules from outside the standard library by its filename), ``open`` for writing outside the
  scratch directory and for reading outside it and the standard library's directories (never a directory there, so no
  ``dir_fd`` can point outside), ``os.chdir``/``os.listdir``/``os.mkdir``/``os.remove``/``os.rename``/``os.chmod``/
  ``shutil.rmtree`` and friends outside the scratch directory, ``os.symlink``/``os.link`` anywhere, a second audit
  hook, tracing/profiling and ``gc`` introspection (the ways to reach or rewrite the hook), raising resource limits.
  Paths are resolved symlink by symlink as the kernel would; relative paths must not contain ``..``. The hook binds
  every builtin and function it uses when it is created and keeps only immutable data and C functions in its closure,
  so user code that patches ``builtins``, ``os.path`` or ``os.stat_result`` cannot change its decisions. The few
  ``os``/``signal`` functions that raise no audit event (``mknod``, ``mkfifo``, ``chroot``, ``pidfd_open``,
  ``pidfd_send_signal``) and the user/group database lookups (libc reads /etc/passwd without one) are replaced by
  stubs, and so is ``_imp.create_builtin``, so that no fresh copy of ``posix`` brings them back. A PermissionError
  that escapes the user code is reported as outcome ``denied``.
* Result channel. Inputs go to the child on stdin (one JSON document with the code and the limits; nothing in argv or
  the environment). The report comes back on a pipe of its own, inherited as an extra fd, never stdout or stderr,
  so nothing the code prints (or a library it calls prints) can be mistaken for it. The bootstrap writes the report
  after the code has finished, as one tagged JSON line preceded by a newline, and exits with ``os._exit(0)``; the
  parent takes the last well-formed line, and only from a process that exited with status 0. The code's own process
  holds that fd, so a program that deliberately writes a forged report there and then ``os._exit(0)``s can misreport
  its *own* outcome; it gains nothing by it that it could not get by setting ``result`` or raising. Everything the
  parent knows first-hand (timeout, output limit, death by a signal) it decides itself.

Audit hooks are not a security boundary in CPython's own terms (PEP 578): a bug in a C extension of the standard
library can still be used to escape. They are layered here with process, limit and filesystem-scope isolation so that
such an escape reaches only a short-lived, resource-limited process of the function's own unprivileged user.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

SandboxOutcome = Literal["ok", "error", "timeout", "memory", "output_limit", "denied"]


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use; every limit applies to the child process (and its group), never to the caller."""

    timeout_s: float = 10.0  # wall clock; the process (and its group) is killed after it
    cpu_s: int = 10  # RLIMIT_CPU
    memory_mb: int = 256  # RLIMIT_AS
    max_output_bytes: int = 1_000_000  # stdout+stderr and the result together; more is cut and reported
    max_file_bytes: int = 10_000_000  # RLIMIT_FSIZE for files written in the scratch dir

    def __post_init__(self) -> None:
        """Reject limits that would make every run fail (or never stop) before a process is spent on it."""
        for name in ("timeout_s", "cpu_s", "memory_mb", "max_output_bytes", "max_file_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive")


@dataclass(frozen=True)
class SandboxResult:
    """What one run did, in the terms the tool reports back to the model."""

    outcome: SandboxOutcome
    result: Any  # the JSON value the code left in a variable named `result` (None if unset)
    stdout: str  # truncated to the limit
    stderr: str  # truncated; on "error" ends with the traceback's last line
    detail: str  # one human-readable line saying what happened (e.g. "killed after 10 s")
    duration_ms: float


# The interpreter flags: isolated (-I), no site (-S), no .pyc writes (-B), unbuffered output (-u), UTF-8 mode.
_PYTHON_FLAGS = ("-I", "-S", "-B", "-u", "-X", "utf8")
_REPORT_TAG = "strata_sandbox_report"
_CHILD_OUTCOMES = frozenset({"ok", "error", "memory", "denied"})
_CHUNK_BYTES = 65536
_REAP_TIMEOUT_S = 5.0
_REPORT_OVERHEAD_BYTES = 4096  # the report line's own fields around the result (its detail is one line)
_MEMORY_MARKERS = (b"MemoryError", b"Cannot allocate memory", b"out of memory")

# The child's side. It runs before (and around) the user code in the child interpreter, so it can use only the
# standard library; it is kept as source text because the child cannot import this package (-I -S).
_BOOTSTRAP = r'''
import _imp
import _signal
import builtins
import json
import linecache
import os
import posix
import resource
import sys
import traceback

USER_FILENAME = "<sandbox>"
REPORT_TAG = "strata_sandbox_report"
NPROC_HEADROOM = 16
NOFILE = 64
DENIED_MODULES = frozenset({
    "ctypes", "_ctypes", "socket", "_socket", "ssl", "_ssl", "multiprocessing", "_multiprocessing", "_posixshmem",
    "subprocess", "_posixsubprocess", "sqlite3", "_sqlite3", "_dbm", "_gdbm", "readline", "pwd", "grp", "spwd",
    "syslog", "ossaudiodev", "_tkinter", "_xxsubinterpreters", "_xxinterpchannels", "_xxtestfuzz",
})
DENIED_EVENTS = frozenset({
    "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
    "os.link", "os.symlink",
    "sys.addaudithook", "sys.settrace", "sys.setprofile", "sys._current_frames", "sys._current_exceptions",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "resource.setrlimit", "resource.prlimit", "cpython.PyInterpreterState_New",
    "webbrowser.open", "ensurepip.bootstrap", "urllib.Request",
})
DENIED_EVENT_PREFIXES = (
    "socket.", "ctypes.", "sqlite3.", "http.client.", "ftplib.", "imaplib.", "nntplib.", "poplib.", "smtplib.",
    "telnetlib.",
)
MODIFYING_EVENTS = frozenset({
    "os.mkdir", "os.rmdir", "os.remove", "os.chmod", "os.chown", "os.utime", "os.truncate", "os.setxattr",
    "os.removexattr", "shutil.rmtree",
})
UNAUDITED_OS_FUNCTIONS = ("mknod", "mkfifo", "chroot", "pidfd_open")
# Bound before user code runs, so that code patching builtins cannot garble the report of its own run by accident.
_type, _isinstance, _str, _id, _set, _BaseException = type, isinstance, str, id, set, BaseException
_SystemExit, _MemoryError, _PermissionError = SystemExit, MemoryError, PermissionError


def denied_module(name):
    return any(part in DENIED_MODULES or part.startswith("_test") for part in name.split("."))


def blocked(what):
    """A stand-in for a function that raises no audit event: it only refuses."""

    def refuse(*args, **kwargs):
        raise PermissionError("sandbox blocked " + what)

    return refuse


def unknown(what):
    """A stand-in for a user/group database lookup: "no such entry", which callers such as tarfile handle."""

    def not_found(*args, **kwargs):
        raise KeyError("sandbox: the " + what + " database is not available")

    return not_found


def cap(which, soft, hard=None):
    hard = soft if hard is None else hard
    current = resource.getrlimit(which)[1]
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def count_tasks(uid):
    """Tasks (threads) of this real uid now: RLIMIT_NPROC counts them all, not only ours."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/" + entry + "/status", "rb") as handle:
                status = handle.read()
        except OSError:
            continue
        owner = threads = None
        for line in status.splitlines():
            if line.startswith(b"Uid:"):
                owner = int(line.split()[1])
            elif line.startswith(b"Threads:"):
                threads = int(line.split()[1])
        if owner == uid and threads:
            total += threads
    return total


def apply_limits(limits):
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1)
    cap(resource.RLIMIT_FSIZE, limits["max_file_bytes"])
    cap(resource.RLIMIT_NOFILE, NOFILE)
    try:
        tasks = count_tasks(os.getuid())
    except OSError:
        tasks = None
    if tasks is not None:
        cap(resource.RLIMIT_NPROC, tasks + NPROC_HEADROOM)


def neutralise():
    """Load every allowed built-in module now, then take away what raises no audit event."""
    for name in sys.builtin_module_names:
        if name not in sys.modules and not denied_module(name):
            __import__(name)
    for module in (posix, os):
        for name in UNAUDITED_OS_FUNCTIONS:
            if hasattr(module, name):
                setattr(module, name, blocked("os." + name))
    for module in (_signal, sys.modules.get("signal")):
        if module is not None and hasattr(module, "pidfd_send_signal"):
            module.pidfd_send_signal = blocked("signal.pidfd_send_signal")
    # The user and group databases are files outside the sandbox that libc reads without an audit event. The modules
    # stay importable (tarfile and shutil import them) but cannot read; a fresh copy is an import the hook denies.
    import pwd

    pwd.getpwall = blocked("pwd.getpwall")
    pwd.getpwnam = pwd.getpwuid = unknown("user")
    try:
        import grp
    except ImportError:
        pass
    else:
        grp.getgrall = blocked("grp.getgrall")
        grp.getgrnam = grp.getgrgid = unknown("group")
    # A fresh posix, _signal or pwd module would bring the originals back.
    _imp.create_builtin = blocked("creating a built-in module again")


def install_hook(scratch, roots):
    """Install the audit hook. Everything it uses is bound here, before user code runs; its closure holds only
    immutable values and C functions, because user code can see a raising hook's frame (and its locals) in a
    traceback."""
    _type = type
    _str = str
    _bytes = bytes
    _int = int
    _len = len
    _issubclass = issubclass
    _PermissionError = PermissionError
    _OSError = OSError
    _str_join = str.join
    _bytes_join = bytes.join
    _decode = bytes.decode
    _index = int.__index__
    _tuple_item = tuple.__getitem__
    _lstat = posix.lstat
    _readlink = posix.readlink
    _write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    _scratch = scratch
    _scratch_prefix = scratch + "/"
    _roots = tuple(roots)
    _root_prefixes = tuple(root + "/" for root in roots)
    _readable_devices = frozenset({"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"})
    _writable_devices = frozenset({"/dev/null"})
    _denied_events = DENIED_EVENTS
    _denied_prefixes = DENIED_EVENT_PREFIXES
    _denied_modules = DENIED_MODULES
    _modifying_events = MODIFYING_EVENTS

    def sandbox_audit_hook(event, args):
        if _type(event) is not _str:
            raise _PermissionError("sandbox blocked an audit event with a non-string name")
        if event in _denied_events or event.startswith(_denied_prefixes):
            raise _PermissionError("sandbox blocked " + event)
        if event == "import":
            name = args[0]
            if not _issubclass(_type(name), _str):
                raise _PermissionError("sandbox blocked an import of a non-string module name")
            name = _str_join("", [name])
            for part in name.split("."):
                if part in _denied_modules or part.startswith("_test"):
                    raise _PermissionError("sandbox blocked import of " + name)
            if _len(args) < 2 or args[1] is None:
                return
            checks = ((args[1], "extension"),)
        elif event == "open":
            mode = args[1]
            flags = args[2]
            writing = False
            if mode is not None:
                if not _issubclass(_type(mode), _str):
                    raise _PermissionError("sandbox blocked open with a non-string mode")
                mode = _str_join("", [mode])
                writing = "w" in mode or "a" in mode or "x" in mode or "+" in mode
            if _issubclass(_type(flags), _int) and _index(flags) & _write_flags:
                writing = True
            checks = ((args[0], "write" if writing else "read"),)
        elif event == "os.listdir" or event == "os.scandir":
            checks = ((args[0], "list"),)
        elif event == "os.chdir":
            checks = ((args[0], "chdir"),)
        elif event == "os.rename":
            checks = ((args[0], "modify"), (args[1], "modify"))
        elif event in _modifying_events:
            checks = ((args[0], "modify"),)
        else:
            return
        for path, kind in checks:
            if path is None:
                if kind == "list":
                    continue
                raise _PermissionError("sandbox blocked " + event + " without a path")
            path_type = _type(path)
            if _issubclass(path_type, _int):
                # An open fd: it was opened through this hook, so only a modification needs to know what it is.
                if kind != "modify":
                    continue
                try:
                    text = _readlink("/proc/self/fd/" + _str(_index(path)))
                except _OSError:
                    raise _PermissionError("sandbox blocked " + event + " of an unknown file descriptor") from None
            elif _issubclass(path_type, _str):
                text = _str_join("", [path])
            elif _issubclass(path_type, _bytes):
                text = _decode(_bytes_join(b"", [path]), "utf-8", "surrogateescape")
            elif event == "shutil.rmtree":
                continue  # a path-like object at the Python level; the os calls inside rmtree are checked one by one
            else:
                raise _PermissionError("sandbox blocked " + event + " of a path of an unexpected type")
            if "\x00" in text:
                raise _PermissionError("sandbox blocked " + event + " of a path with a NUL byte")
            if not text.startswith("/"):
                # Relative to the cwd or a directory fd, both always inside the scratch directory, which holds no
                # symlinks (they cannot be made): without "..", a relative path cannot leave it.
                if ".." in text.split("/"):
                    raise _PermissionError("sandbox blocked " + event + " of " + text + ": no '..' in relative paths")
                if kind == "extension":
                    raise _PermissionError("sandbox blocked loading the extension module " + text)
                continue
            pending = text.split("/")
            pending.reverse()
            parts = []
            hops = 0
            while pending:
                part = pending.pop()
                if part == "" or part == ".":
                    continue
                if part == "..":
                    if parts:
                        parts.pop()
                    continue
                parts.append(part)
                here = "/" + _str_join("/", parts)
                try:
                    mode_bits = _tuple_item(_lstat(here), 0)
                except _OSError:
                    continue  # does not exist (yet): the rest is taken as written
                if mode_bits & 0o170000 == 0o120000:
                    hops += 1
                    if hops > 40:
                        raise _PermissionError("sandbox blocked " + event + " of " + text + ": too many symlinks")
                    try:
                        target = _readlink(here)
                    except _OSError:
                        raise _PermissionError("sandbox blocked " + event + " of " + text) from None
                    parts.pop()
                    if target.startswith("/"):
                        parts.clear()
                    more = target.split("/")
                    more.reverse()
                    pending.extend(more)
            real = "/" + _str_join("/", parts)
            in_roots = real in _roots or real.startswith(_root_prefixes)
            if kind == "extension":
                if in_roots:
                    continue
                raise _PermissionError("sandbox blocked loading the extension module " + real)
            if real == _scratch or real.startswith(_scratch_prefix):
                continue
            if kind == "write":
                if real in _writable_devices:
                    continue
                raise _PermissionError("sandbox blocked writing " + real + " (outside the scratch directory)")
            if kind == "read":
                if real in _readable_devices:
                    continue
                if in_roots:
                    try:
                        mode_bits = _tuple_item(_lstat(real), 0)
                    except _OSError:
                        continue
                    if mode_bits & 0o170000 == 0o040000:
                        raise _PermissionError("sandbox blocked opening the directory " + real)
                    continue
                raise _PermissionError(
                    "sandbox blocked reading " + real + " (outside the scratch directory and the standard library)"
                )
            if kind == "list" and in_roots:
                continue
            raise _PermissionError("sandbox blocked " + event + " of " + real + " (outside the scratch directory)")

    sys.addaudithook(sandbox_audit_hook)


def find_in_chain(exc, kind):
    seen = _set()
    while exc is not None and _id(exc) not in seen:
        seen.add(_id(exc))
        if _isinstance(exc, kind):
            return exc
        exc = exc.__cause__ if exc.__cause__ is not None else exc.__context__
    return None


def describe(exc):
    try:
        text = _str(exc)
    except _BaseException:
        text = ""
    line = _type(exc).__name__ + (": " + text if text else "")
    return " ".join(line.split())[:500]


def print_exception(err, exc):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except _BaseException:
        pass
    try:
        tb = exc.__traceback__
        traceback.print_exception(_type(exc), exc, tb.tb_next if tb is not None else None, file=err)
    except _BaseException:
        try:
            err.write(describe(exc) + "\n")
        except _BaseException:
            pass


def run(source, namespace, err, dumps):
    """Run the user code; return (outcome, detail, the result as JSON text)."""
    try:
        exec(compile(source, USER_FILENAME, "exec"), namespace)
    except _SystemExit as exc:
        if exc.code is not None and exc.code != 0:
            print_exception(err, exc)
            return "error", describe(exc), "null"
    except _BaseException as exc:
        if find_in_chain(exc, _MemoryError) is not None:
            namespace.clear()
            if exc.__traceback__ is not None:
                traceback.clear_frames(exc.__traceback__)
            err.write(describe(exc) + "\n")
            return "memory", describe(exc), "null"
        print_exception(err, exc)
        denial = find_in_chain(exc, _PermissionError)
        if denial is not None:
            return "denied", describe(denial), "null"
        return "error", describe(exc), "null"
    try:
        return "ok", "", dumps(namespace.get("result"), allow_nan=False)
    except _MemoryError as exc:
        namespace.clear()
        return "memory", describe(exc) + " while encoding the result", "null"
    except _BaseException as exc:
        detail = "result is not JSON-serialisable: " + describe(exc)
        err.write(detail + "\n")
        return "error", detail, "null"


def main():
    request = json.loads(sys.stdin.buffer.read())
    channel = request["channel"]
    scratch = request["scratch"]
    source = request["code"]
    apply_limits(request["limits"])
    roots = tuple(dict.fromkeys(os.path.realpath(entry) for entry in sys.path if entry and entry != "/"))
    neutralise()
    err = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    linecache.cache[USER_FILENAME] = (len(source), None, source.splitlines(True), USER_FILENAME)
    module = type(sys)("__main__")
    namespace = module.__dict__
    namespace["__builtins__"] = builtins
    namespace["inputs"] = request["inputs"]
    memory = request["limits"]["memory_mb"] * 1024 * 1024
    del request
    sys.modules["__main__"] = module
    # Bound now: the code may patch json or os for its own purposes; the report must not depend on that.
    dumps = json.dumps
    write = os.write
    leave = os._exit
    cap(resource.RLIMIT_AS, memory)
    install_hook(scratch, roots)
    outcome, detail, result = run(source, namespace, err, dumps)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        err.flush()
    except _BaseException:
        pass
    report = "\n{" + dumps(REPORT_TAG) + ": 1, \"outcome\": " + dumps(outcome) + ", \"detail\": " + dumps(detail)
    data = (report + ", \"result\": " + result + "}\n").encode("ascii")
    try:
        while data:
            data = data[write(channel, data):]
    except _BaseException:
        leave(3)
    leave(0)


main()
'''


async def run_python(code: str, inputs: dict[str, Any], limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run untrusted `code` in a fresh, limited interpreter process with `inputs`; return what became of it."""
    started = time.monotonic()
    try:
        json.dumps(inputs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return SandboxResult("error", None, "", "", f"inputs are not JSON-serialisable: {exc}", 0.0)
    scratch = _make_scratch()
    run = _Run(limits)
    proc: asyncio.subprocess.Process | None = None
    channel: asyncio.ReadTransport | None = None
    channel_read = channel_write = -1
    try:
        channel_read, channel_write = os.pipe()
        request = json.dumps(
            {
                "code": code,
                "inputs": inputs,
                "scratch": scratch,
                "channel": channel_write,
                "limits": {
                    "cpu_s": limits.cpu_s,
                    "memory_mb": limits.memory_mb,
                    "max_file_bytes": limits.max_file_bytes,
                },
            },
            allow_nan=False,
        ).encode()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *_PYTHON_FLAGS,
            "-c",
            _BOOTSTRAP,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=scratch,
            env=_child_env(scratch),
            pass_fds=(channel_write,),
            start_new_session=True,
        )
        started = time.monotonic()
        os.close(channel_write)
        channel_write = -1
        read_end, channel_read = channel_read, -1  # _open_channel owns (and on failure closes) it from here
        reader, channel = await _open_channel(read_end)
        await run.supervise(proc, reader, request)
    finally:
        if channel_write >= 0:
            os.close(channel_write)
        if channel_read >= 0:
            os.close(channel_read)
        cleanup = asyncio.ensure_future(_clean_up(proc, channel, scratch))
        await asyncio.shield(cleanup)
    duration_ms = (time.monotonic() - started) * 1000
    assert proc is not None  # supervise() ran, so the process exists
    return run.conclude(proc.returncode, limits, duration_ms)


class _Run:
    """The parent's side of one run: the bounded output it read and what it had to do to the process."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.channel = bytearray()
        self.used = 0
        self.output_exceeded = False
        self.timed_out = False

    async def supervise(self, proc: asyncio.subprocess.Process, reader: asyncio.StreamReader, request: bytes) -> None:
        """Feed stdin, drain the three outputs under one byte budget, and kill the group at a limit."""
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise RuntimeError("the sandbox process was started without its pipes")

        def overflow() -> None:
            self.output_exceeded = True
            _kill_group(proc)

        work = asyncio.gather(
            _feed(proc.stdin, request),
            self._pump(proc.stdout, self.stdout, overflow),
            self._pump(proc.stderr, self.stderr, overflow),
            self._pump_channel(reader, overflow),
            proc.wait(),
        )
        try:
            await asyncio.wait_for(work, timeout=self.limits.timeout_s)
        except TimeoutError:
            if not self.output_exceeded:
                self.timed_out = True
        finally:
            _kill_group(proc)

    async def _pump(self, stream: asyncio.StreamReader, sink: bytearray, overflow: Callable[[], None]) -> None:
        """Copy a stream into `sink` while the shared budget lasts; the first byte past it triggers `overflow`."""
        while chunk := await stream.read(_CHUNK_BYTES):
            room = max(self.limits.max_output_bytes - self.used, 0)
            sink += chunk[:room]
            self.used += min(len(chunk), room)
            if len(chunk) > room:
                overflow()
                return

    async def _pump_channel(self, reader: asyncio.StreamReader, overflow: Callable[[], None]) -> None:
        """Copy the report channel under a budget of its own (the report is written after the code's output, but the
        pipes are drained in no particular order, so a large result must not take the room of what was printed
        first); the result's share of the shared budget is settled in `conclude`."""
        while chunk := await reader.read(_CHUNK_BYTES):
            room = max(self.limits.max_output_bytes + _REPORT_OVERHEAD_BYTES - len(self.channel), 0)
            self.channel += chunk[:room]
            if len(chunk) > room:
                overflow()
                return

    def conclude(self, returncode: int | None, limits: SandboxLimits, duration_ms: float) -> SandboxResult:
        """Decide the outcome: the parent's own observations first, then the child's report."""
        stdout, stderr = _decode(self.stdout), _decode(self.stderr)

        def done(outcome: SandboxOutcome, detail: str, result: Any = None) -> SandboxResult:
            return SandboxResult(outcome, result, stdout, stderr, detail, duration_ms)

        if self.output_exceeded:
            return done(
                "output_limit",
                f"output passed the limit of {limits.max_output_bytes} bytes; the process was killed",
            )
        if self.timed_out:
            return done("timeout", f"killed after {limits.timeout_s:g} s (wall-clock limit)")
        report = _parse_report(bytes(self.channel)) if returncode == 0 else None
        if report is not None:
            outcome, detail, result = report
            if self.used + len(json.dumps(result)) > limits.max_output_bytes:
                self.output_exceeded = True
                return done("output_limit", f"output and result passed the limit of {limits.max_output_bytes} bytes")
            if outcome == "ok":
                return done("ok", f"finished in {duration_ms:.0f} ms", result)
            if outcome == "memory":
                return done("memory", f"memory limit of {limits.memory_mb} MB reached ({detail})")
            return done(outcome, detail)
        if returncode is not None and returncode < 0:
            return self._died(-returncode, limits, done)
        if any(marker in self.stderr for marker in _MEMORY_MARKERS):
            return done("memory", f"memory limit of {limits.memory_mb} MB reached before the code could report")
        if returncode == 0:
            return done("error", "the process ended without reporting a result (it left early or closed the channel)")
        if returncode is None:
            return done("error", "the process could not be reaped after it was killed")
        return done("error", f"the process exited with status {returncode} before reporting a result")

    def _died(
        self, signum: int, limits: SandboxLimits, done: Callable[[SandboxOutcome, str], SandboxResult]
    ) -> SandboxResult:
        """Name a death by signal: the CPU limits' SIGXCPU/SIGKILL are a timeout; a crash out of memory is memory."""
        if signum == signal.SIGXCPU:
            return done("timeout", f"CPU limit of {limits.cpu_s} s reached (killed by SIGXCPU)")
        name = _signal_name(signum)
        if any(marker in self.stderr for marker in _MEMORY_MARKERS):
            return done("memory", f"memory limit of {limits.memory_mb} MB reached (killed by {name})")
        if signum == signal.SIGKILL:  # not ours: we kill only at the limits handled before
            return done(
                "timeout",
                f"killed by SIGKILL at the CPU hard limit of {limits.cpu_s + 1} s (or by the system's OOM killer)",
            )
        return done("error", f"the process died of {name}")


def _make_scratch() -> str:
    """A fresh private (0700) directory for one run, by its real path: the audit hook compares resolved paths."""
    return os.path.realpath(tempfile.mkdtemp(prefix="strata-python-"))


def _child_env(scratch: str) -> dict[str, str]:
    """The child's whole environment: nothing of ours (no credentials), only what well-behaved code expects."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": scratch,
        "TMPDIR": scratch,
        "TMP": scratch,
        "TEMP": scratch,
        # One malloc arena per thread would reserve 64 MB of address space each against RLIMIT_AS.
        "MALLOC_ARENA_MAX": "2",
    }


async def _open_channel(fd: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
    """Wrap the report pipe's read end in a stream the event loop drains like stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CHUNK_BYTES)
    pipe = os.fdopen(fd, "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except BaseException:
        pipe.close()
        raise
    return reader, transport


async def _feed(stdin: asyncio.StreamWriter, request: bytes) -> None:
    """Send the request and close stdin; a child that died first is not an error of ours."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(request)
        await stdin.drain()
        stdin.close()
        await stdin.wait_closed()


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's whole process group (it leads its own session), then the child itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def _clean_up(
    proc: asyncio.subprocess.Process | None, channel: asyncio.ReadTransport | None, scratch: str
) -> None:
    """Kill, reap, close and delete, in that order, so nothing can write into the scratch dir while it goes."""
    try:
        if proc is not None:
            _kill_group(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _REAP_TIMEOUT_S)
        if channel is not None:
            channel.close()
    finally:
        await asyncio.to_thread(_remove_tree, scratch)


def _remove_tree(path: str) -> None:
    """Delete the scratch dir even where the code took its own permissions away (chmod 000 on nested dirs).

    Top-down, each directory is made accessible before the walk enters it; the process is gone by now, so nothing
    changes the tree meanwhile, and no symlink can be in it (the hook refuses to make one).
    """
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            target = os.path.join(root, name)
            if not os.path.islink(target):
                with contextlib.suppress(OSError):
                    os.chmod(target, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _parse_report(raw: bytes) -> tuple[SandboxOutcome, str, Any] | None:
    """The last well-formed report line on the channel (the bootstrap's own comes last)."""
    prefix = b'{"' + _REPORT_TAG.encode() + b'"'
    for line in reversed(raw.split(b"\n")):
        if not line.startswith(prefix):
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if (
            isinstance(data, dict)
            and data.get(_REPORT_TAG) == 1
            and data.get("outcome") in _CHILD_OUTCOMES
            and isinstance(data.get("detail"), str)
            and "result" in data
        ):
            return data["outcome"], data["detail"], data["result"]
    return None


def _decode(data: bytearray) -> str:
    """UTF-8 text of captured output; a character cut in half by the limit is dropped, not mangled."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(bytes(data), final=False)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
