"""`gplinker serve` started for real in a subprocess on a free loopback port (for the socket and browser tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> dict:
    """GET /health until it answers; fails with the server's stderr if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=5).json()
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError("server not ready in time")


@contextmanager
def live_server(model_dir: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of `python -m gplinker serve model_dir` once /health answers; killed on exit if alive."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "gplinker", "serve", str(model_dir), "--port", str(port),
                                "--device", "cpu", *options],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
