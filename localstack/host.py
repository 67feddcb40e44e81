"""LocalStack on the host, without Docker: a cached venv, a free loopback port, the project's init hook, a clean stop.

LocalStack community (`localstack-core`, the last release on PyPI) needs Python 3.12 or newer and four pins against
dependency drift; its default gateway ignores the bind address, so hypercorn is used. The venv is made once under
`.localstack/venv` (git-ignored), keyed by the pins and the Python version. LocalStack's init folder is pointed at
`localstack/init`, so its ready hook (`strata_resources.py`) deploys the template's stack exactly as it does in
Docker. Used by `scripts/localstack start|stop|status|install|env` and by the tests (`start()` / `LocalStack.stop()`).
Only the standard library is used: it runs under any Python 3.11+.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".localstack"
INIT_DIR = ROOT / "localstack" / "init"
# localstack-core 2026.3.0 is the last release on PyPI; the pins keep its dependencies at versions that work:
# cbor2 6 drops cbor2._decoder, pyOpenSSL 26 drops X509.add_extensions, twisted's TLS needs service_identity, and
# cryptography past 46 breaks that pyOpenSSL
PACKAGES = (
    "localstack-core[runtime]==2026.3.0",
    "cbor2<6",
    "pyopenssl==25.3.0",
    "cryptography>=46,<47",
    "service_identity",
)
UV = "uv==0.13.9"
MIN_PYTHON = (3, 12)
S3_STORAGE = Path("/tmp/localstack-s3-storage")  # noqa: S108 - LocalStack's own fixed folder (its S3 provider)
PIP_NOISE = "is ignored: it is neither a file nor a directory"  # this machine's pip config names absent indexes


class LocalStackUnavailableError(RuntimeError):
    """LocalStack cannot be installed or started here (no Python 3.12+, no package index, it did not come up)."""


class ProvisioningError(RuntimeError):
    """LocalStack started, but its init hook failed: the template's stack is not there."""


@dataclass
class LocalStack:
    """A LocalStack process this module started (its process group), and where it answers."""

    endpoint: str
    pid: int
    state_dir: str
    log_path: str
    stack_name: str
    stage: str

    def stop(self, timeout_s: float = 5) -> None:
        """Stop LocalStack's whole process group: SIGTERM, then SIGKILL after `timeout_s`. It keeps no state (no
        persistence), and its shutdown would otherwise wait out its clients' SQS long polls (up to 20 s). Its buckets'
        folders, which LocalStack leaves in a fixed folder under /tmp whatever FILESYSTEM_ROOT says, go too."""
        buckets = _bucket_names(self.endpoint)
        stop_group(self.pid, timeout_s)
        for name in buckets:
            shutil.rmtree(S3_STORAGE / name, ignore_errors=True)

    def env(self) -> dict[str, str]:
        """What the local cloud and the AWS CLI need to use it."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "STRATA_AWS_STACK": self.stack_name,
        }


def python_candidates() -> Iterator[str]:
    if os.environ.get("STRATA_LOCALSTACK_PYTHON"):
        yield os.environ["STRATA_LOCALSTACK_PYTHON"]
        return
    if sys.version_info >= MIN_PYTHON:
        yield sys.executable
    for name in ("python3.13", "python3.12", "python3.14"):
        found = shutil.which(name)
        if found:
            yield found
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for version in sorted(pyenv.glob("3.1[2-9]*"), reverse=True):
        yield str(version / "bin" / "python3")


def find_python() -> str:
    """A Python 3.12+ with venv (LocalStack's code uses 3.12 syntax although its metadata says 3.10)."""
    check = "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))"
    for candidate in python_candidates():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if subprocess.run([candidate, "-c", check], capture_output=True, timeout=30, check=False).returncode == 0:
                return candidate
    raise LocalStackUnavailableError("no Python 3.12+ with venv found (set STRATA_LOCALSTACK_PYTHON)")


def venv_key(python: str) -> str:
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return hashlib.sha256("\n".join((version, *PACKAGES)).encode()).hexdigest()[:16]


def venv_python(home: Path = HOME) -> Path:
    return home / "venv" / "bin" / "python"


def ensure_venv(home: Path = HOME, log: Any = None) -> Path:
    """The venv's Python, installing the pinned packages first if the venv is missing or was made for other pins.

    uv installs them (10-15 s here, against 80 s for pip, which also compiles 500 MB of bytecode); uv itself comes
    from PyPI through the running Python's pip, into .localstack/uv, and keeps its download cache where uv always does
    (~/.cache/uv), so a fresh clone installs from it."""
    python = find_python()
    key = venv_key(python)
    venv = home / "venv"
    stamp = venv / ".strata-key"
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time; the others then find it done
        if venv_python(home).is_file() and stamp.is_file() and stamp.read_text().strip() == key:
            return venv_python(home)
        started = time.monotonic()
        if log:
            print(f"Installing LocalStack ({PACKAGES[0]}) into {venv} ...", file=log, flush=True)
        uv = home / "uv" / "bin" / "uv"
        if not uv.is_file():
            pip = [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", "--target", str(home / "uv"), UV]
            _run(pip, "installing uv")
        shutil.rmtree(venv, ignore_errors=True)
        _run([str(uv), "venv", "--quiet", "--no-config", "--python", python, str(venv)], "creating the venv")
        install = [str(uv), "pip", "install", "--quiet", "--no-config", "--python", str(venv_python(home))]
        _run([*install, *PACKAGES], "installing LocalStack")
        stamp.write_text(key + "\n")
        if log:
            print(f"LocalStack installed in {time.monotonic() - started:.1f} s", file=log, flush=True)
    return venv_python(home)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if PIP_NOISE not in line and line.strip()]
        raise LocalStackUnavailableError(f"{what} failed: {lines[-1] if lines else result.returncode}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    state_dir: Path | None = None,
    port: int = 0,
    stage: str = "dev",
    api_url: str = "http://127.0.0.1:8080",
    timeout_s: float = 240,
    home: Path = HOME,
    with_stack: bool = True,
) -> LocalStack:
    """Start LocalStack on 127.0.0.1 (a free port unless `port`), wait until it is healthy and its init hook has
    deployed the template's stack (unless not `with_stack`: a bare LocalStack), and return it. Raises
    LocalStackUnavailableError when it cannot run here, and ProvisioningError when it ran but the hook failed."""
    python = ensure_venv(home)
    state = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="strata-localstack-"))
    shutil.rmtree(state / "fs", ignore_errors=True)
    ready_d = state / "fs" / "etc" / "localstack" / "init" / "ready.d"
    ready_d.parent.mkdir(parents=True, exist_ok=True)
    if with_stack:
        ready_d.symlink_to(INIT_DIR, target_is_directory=True)  # the same hook Docker mounts at ready.d
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    stack_name = f"strata-{stage}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_", "PYTHON"))}
    env.update(
        GATEWAY_SERVER="hypercorn",  # the default (twisted) listens on 0.0.0.0 whatever GATEWAY_LISTEN says
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        LOCALSTACK_HOST=f"127.0.0.1:{port}",
        SQS_ENDPOINT_STRATEGY="path",  # queue URLs on the endpoint itself, not sqs.<region>.127.0.0.1
        DISABLE_EVENTS="1",  # no analytics
        SKIP_SSL_CERT_DOWNLOAD="1",
        DNS_ADDRESS="0",  # no DNS server on port 53
        OVERRIDE_IN_DOCKER="0",  # a VM with /.dockerenv is not LocalStack's container: keep every folder in `state`
        LOCALSTACK_VOLUME_DIR=str(state / "volume"),
        FILESYSTEM_ROOT=str(state / "fs"),
        AWS_ENDPOINT_URL=endpoint,  # for the init hook
        STRATA_TEMPLATE=str(ROOT / "template.yaml"),
        STRATA_STAGE=stage,
        STRATA_STACK_NAME=stack_name,
        STRATA_API_URL=api_url,
    )
    log_path = state / "localstack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            cwd=state,  # not the project root, whose localstack/ folder would shadow the package
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
    instance = LocalStack(endpoint, process.pid, str(state), str(log_path), stack_name, stage)
    try:
        _wait_ready(instance, process, timeout_s, hooks=1 if with_stack else 0)
    except BaseException:
        instance.stop()
        raise
    return instance


def _wait_ready(instance: LocalStack, process: subprocess.Popen[bytes], timeout_s: float, hooks: int) -> None:
    deadline = time.monotonic() + timeout_s
    healthy = False
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackUnavailableError(f"LocalStack exited with {process.returncode}: {_tail(instance)}")
        if not healthy:
            healthy = _get(f"{instance.endpoint}/_localstack/health") is not None
        else:
            init = _get(f"{instance.endpoint}/_localstack/init")
            if init and init.get("completed", {}).get("READY"):
                scripts = [s for s in init.get("scripts", []) if s.get("stage") == "READY"]
                failed = [s["name"] for s in scripts if s.get("state") != "SUCCESSFUL"]
                if len(scripts) != hooks or failed:
                    raise ProvisioningError(f"init hook {failed or 'missing'}: {_tail(instance)}")
                return
        time.sleep(0.2)
    what = "stack deployment" if healthy else "health"
    raise LocalStackUnavailableError(f"LocalStack {what} not ready after {timeout_s:.0f} s: {_tail(instance)}")


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
            body: dict[str, Any] = json.loads(response.read())
            return body
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _bucket_names(endpoint: str) -> list[str]:
    """S3's ListBuckets (LocalStack wants an Authorization header, not a valid signature); [] if it does not answer,
    or if S3 never started (asking would start it)."""
    health = _get(f"{endpoint}/_localstack/health")
    if not health or health.get("services", {}).get("s3") != "running":
        return []
    credential = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
    request = urllib.request.Request(f"{endpoint}/", headers={"Authorization": credential})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - our own loopback URL
            return re.findall(r"<Bucket><Name>([^<]+)</Name>", response.read().decode())
    except (OSError, urllib.error.URLError):
        return []


def _tail(instance: LocalStack, lines: int = 12) -> str:
    try:
        text = Path(instance.log_path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    wanted = [line for line in text if "ERROR" in line or "Error" in line or "strata:" in line] or text
    return " | ".join(wanted[-lines:])


def stop_group(pid: int, timeout_s: float = 5) -> None:
    """SIGTERM the process group `pid` leads (a LocalStack this module started), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if not _gone(pid, timeout_s):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _gone(pid, timeout_s)


def _gone(pid: int, timeout_s: float) -> bool:
    """Wait until no process of group `pid` is left, reaping its leader if it is our child (a zombie still counts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


# `scripts/localstack`: one LocalStack by hand, its state under .localstack/run

RUN_DIR = HOME / "run"
RUN_FILE = RUN_DIR / "localstack.json"


def _running() -> LocalStack | None:
    """The LocalStack `start` started, if it still runs (its pid not since reused by another program)."""
    try:
        instance = LocalStack(**json.loads(RUN_FILE.read_text()))
        command = Path(f"/proc/{instance.pid}/cmdline").read_bytes()
    except (OSError, ValueError, TypeError):
        return None
    return instance if b"localstack.runtime.main" in command else None


def _exports(instance: LocalStack) -> str:
    return "\n".join(f"export {key}={value}" for key, value in instance.env().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/localstack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    started = commands.add_parser("start", help="start LocalStack and deploy the template's stack")
    started.add_argument("--port", type=int, default=0, help="default: a free port")
    started.add_argument("--stage", default="dev")
    started.add_argument("--api-url", default="http://127.0.0.1:8080", help="the local cloud's front URL")
    commands.add_parser("stop", help="stop the LocalStack `start` started")
    commands.add_parser("status", help="print the running LocalStack's endpoint and health")
    commands.add_parser("env", help="print the environment the local cloud needs to use it")
    commands.add_parser("install", help="only make the venv (once per pins)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(ensure_venv(log=sys.stderr))
        elif args.command == "start":
            if (instance := _running()) is not None:
                print(f"LocalStack already runs at {instance.endpoint} (pid {instance.pid})", file=sys.stderr)
                return 1
            ensure_venv(log=sys.stderr)
            began = time.monotonic()
            instance = start(RUN_DIR, args.port, args.stage, args.api_url)
            RUN_FILE.write_text(json.dumps(asdict(instance)))
            print(
                f"LocalStack at {instance.endpoint} (pid {instance.pid}, log {instance.log_path}), stack "
                f"{instance.stack_name} deployed, in {time.monotonic() - began:.1f} s",
                file=sys.stderr,
            )
            print(_exports(instance))
        elif args.command in ("stop", "status", "env"):
            instance = _running()
            if instance is None:
                print("LocalStack is not running (scripts/localstack start)", file=sys.stderr)
                return 0 if args.command == "stop" else 1
            if args.command == "stop":
                instance.stop()
                RUN_FILE.unlink(missing_ok=True)
                print(f"LocalStack (pid {instance.pid}) stopped", file=sys.stderr)
            elif args.command == "status":
                print(json.dumps({**asdict(instance), "health": _get(f"{instance.endpoint}/_localstack/health")}))
            else:
                print(_exports(instance))
    except (LocalStackUnavailableError, ProvisioningError) as exc:
        print(f"LocalStack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
