"""Load test of `gplinker serve`: N concurrent clients for T seconds on loopback, against batch prediction.

Model: a tiny scratch NER model trained for a few steps on synthetic sentences (bench_predict's
generator); the point is the server's overhead and batching, not quality. Texts: the same mix as
bench_predict (short sentences, 2% long texts of 300-1,500 characters), one text per request.

1. The server (`python -m gplinker serve MODEL --no-access-log`, its own process) gets N client
   coroutines (keep-alive HTTP/1.1 connections, in this process) that each send `{"text": ...}` and wait for the answer,
   for T seconds or until --max-requests requests have been sent. Reported: requests/s, p50/p99
   latency, errors (non-200 answers or failed connections; goal 0), and whether every answer
   equals the batch Pipeline's record for its text.
2. The baseline: `Pipeline` (the code of `gplinker predict`) on the texts that round sent, in one
   call, in this process, while the server idles (median of --baseline-repeats runs).
3. --rounds times 1 and 2, the server up throughout: each round's ratio compares two runs made
   one after the other, so a load change on a shared machine moves both sides (in session 8 the
   batch baseline alone moved 20 % between runs). Goal (issue 16): the median round's server
   texts/s >= 0.8x batch. Clients and server share the machine's cores, as they
   would on one host. Both sides get --threads CPU threads for inference (default: torch's, one
   per core): the baseline as torch threads, the server split over its --workers (default 2 with
   torch on a CPU: two batches side by side, each with half the threads). On a loaded machine
   small batches with 2 threads can cost 25x their 1-thread time (thread wake-ups), so try
   --threads 1 there.

    python scripts/bench_serve.py                     # 32 clients, 30 s
    python scripts/bench_serve.py --clients 8 --seconds 10
    python scripts/bench_serve.py --smoke             # seconds: checks the script runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_machine import add_huge_pages_flag, machine, setup_like_cli  # scripts/ is on sys.path when a script runs
from bench_predict import mixed_lines, train_model

REPO = Path(__file__).resolve().parents[1]


def start_server(model_dir: Path, port: int, max_batch: int, max_wait_ms: float, threads: int, workers: int,
                 log: Path) -> subprocess.Popen:
    """`gplinker serve` on 127.0.0.1:port, its output in `log`."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "gplinker", "serve", str(model_dir), "--port", str(port),
                             "--device", "cpu", "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms),
                             "--threads", str(threads), "--workers", str(workers), "--no-access-log"],
                            cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            httpx.get(f"{url}/health", timeout=5).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit("the server did not become ready")


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: a few lines of asyncio instead of a client library,
    so the clients, which share the cores with the server, cost as little CPU as they can."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: str, payload: object) -> tuple[int, bytes]:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(port: int, texts: list[str], clients: int, seconds: float, max_requests: int) -> dict:
    """Each client sends the next text and awaits its answer, until the time or the request budget is spent."""
    sent: list[int] = []  # text index of each request, in sending order
    answers: dict[int, dict] = {}  # request number -> record
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        connection = await Connection.open(port)
        try:
            while time.monotonic() < deadline and len(sent) < max_requests:
                number = len(sent)
                sent.append(number % len(texts))
                started = time.perf_counter()
                try:
                    status, body = await connection.post("/predict", {"text": texts[sent[number]]})
                except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    connection.close()
                    connection = await Connection.open(port)
                    continue
                latencies.append(time.perf_counter() - started)
                if status == 200:
                    answers[number] = json.loads(body)
                else:
                    errors.append(f"{status}: {body[:200]!r}")
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"sent": sent, "answers": answers, "latencies": latencies, "errors": errors,
            "wall": time.perf_counter() - started}


def scored(record: dict) -> dict[tuple, float]:
    """(start, end, type) -> score of a record's entities."""
    return {(e["start"], e["end"], e["type"]): e["score"] for e in record["entities"]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients send")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--texts", type=int, default=2000, help="distinct texts the clients cycle through")
    parser.add_argument("--max-batch", type=int, default=64, help="the server's --max-batch")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the server's --max-wait-ms")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="CPU threads for inference: the baseline's torch threads, and the server's in all")
    parser.add_argument("--workers", type=int, default=0,
                        help="the server's --workers (batches at once; 0: its default, 2 on a CPU with 2+ threads)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (serve for --seconds, then batch on the same texts); the goal is the median "
                             "of the rounds' ratios, each measured side by side")
    parser.add_argument("--baseline-repeats", type=int, default=1, help="batch Pipeline runs per round (median)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the scratch model")
    parser.add_argument("--layers", type=int, default=1, help="layers of the scratch model")
    parser.add_argument("--steps", type=int, default=20,
                        help="training steps of the model (100 for --hidden 256 --layers 4: fewer leave it predicting "
                             "~17 junk entities per text, which makes decoding, not batching, the cost)")
    parser.add_argument("--smoke", action="store_true", help="4 clients for 3 s on a 2-step model: checks the script")
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    setup_like_cli(args)  # the baseline here as `gplinker` runs; the server is `gplinker` itself
    if args.smoke:
        args.clients, args.seconds, args.texts, args.baseline_repeats, args.rounds = 4, 2.0, 64, 1, 2
    args.clients, args.seconds = max(1, min(args.clients, 256)), max(1.0, min(args.seconds, 600.0))  # bounded
    args.rounds = max(1, min(args.rounds, 10))

    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    sizes = {"hidden": args.hidden, "layers": args.layers, "heads": 2 if args.hidden < 128 else 4, "head": 16}
    steps = 2 if args.smoke else args.steps
    model_dir = train_model(work, sizes, steps=steps, max_length=128)
    rng = random.Random(7)
    texts = [json.loads(line)["text"] for line in mixed_lines(rng, args.texts, 0.02, (300, 1500))]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(model_dir, port, args.max_batch, args.max_wait_ms, args.threads, args.workers,
                          work / "server.log")
    torch.set_num_threads(args.threads)
    from gplinker import Pipeline

    rounds: list[dict] = []
    try:
        wait_ready(url, server)
        import httpx

        httpx.post(f"{url}/predict", json={"texts": texts[:8]}, timeout=60)  # warm up
        nlp = Pipeline.from_pretrained(model_dir, device="cpu")
        nlp(texts[:8])  # warm up
        for _ in range(args.rounds):  # serve, then batch on the same texts: each round's ratio is side by side
            before = httpx.get(f"{url}/health", timeout=10).json()
            server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
            run = asyncio.run(load(port, texts, args.clients, args.seconds, args.max_requests))
            run["server_cpu"] = cpu_seconds(server.pid) - server_cpu
            run["client_cpu"] = time.process_time() - client_cpu
            after = httpx.get(f"{url}/health", timeout=10).json()
            run["batches"], run["batched"] = after["batches"] - before["batches"], after["texts"] - before["texts"]
            run["workers"] = after["workers"]
            run.update(baseline(nlp, [texts[k] for k in run["sent"]], args.baseline_repeats))  # server idle
            rounds.append(run)
    finally:
        server.terminate()
        server.wait(timeout=60)

    differ = [(run["answers"][n], run["expected"][n]) for run in rounds for n in run["answers"]
              if scored(run["answers"][n]).keys() != scored(run["expected"][n]).keys()]
    # items must agree exactly; scores may differ in the last digits, as any batch composition changes float sums
    score_diff = max((abs(a - scored(run["expected"][n])[key]) for run in rounds for n in run["answers"]
                      for key, a in scored(run["answers"][n]).items() if key in scored(run["expected"][n])),
                     default=0.0)
    if not differ:
        shutil.rmtree(work, ignore_errors=True)  # the model and the server's log; kept to inspect a difference
    else:
        (work / "differ.json").write_text(json.dumps(differ[:20], ensure_ascii=False, indent=1), encoding="utf-8")

    expected = [r for run in rounds for r in run["expected"]]
    entities = sum(len(r["entities"]) for r in expected) / max(len(expected), 1)
    workers = rounds[0]["workers"]
    print(f"# bench_serve: {machine()}")
    print(f"# {args.rounds} round(s), each {args.clients} clients for {args.seconds:g} s on loopback, one text per "
          f"request, then batch Pipeline on the texts that round sent (the server idle); server --max-batch "
          f"{args.max_batch} --max-wait-ms {args.max_wait_ms:g}, {args.threads} CPU thread(s) for inference in the "
          f"baseline and in the server ({workers} worker(s) of {max(1, args.threads // workers)} thread(s)), "
          f"scratch NER model hidden {sizes['hidden']} x {sizes['layers']} layer ({steps} steps: {entities:.1f} "
          f"entities per text), max_length 128")
    print("| round | clients | seconds | requests | requests/s | p50 ms | p99 ms | errors | batches | texts per batch "
          "| batch Pipeline texts/s (median) | serve / batch | CPU s per 1,000 texts: server, clients, batch |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ratios = []
    for number, run in enumerate(rounds, 1):
        done = len(run["answers"])
        served_rate = done / run["wall"]
        batch_rate = len(run["sent"]) / run["batch_seconds"] if run["batch_seconds"] > 0 else float("inf")
        ratios.append(served_rate / batch_rate)
        latencies_ms = [1000 * x for x in run["latencies"]]
        per_batch = run["batched"] / run["batches"] if run["batches"] else 0.0
        print(f"| {number} | {args.clients} | {run['wall']:.1f} | {done} | {served_rate:.1f} | "
              f"{statistics.median(latencies_ms) if latencies_ms else float('nan'):.1f} | "
              f"{percentile(latencies_ms, 0.99):.1f} | {len(run['errors'])} | {run['batches']} | {per_batch:.1f} | "
              f"{batch_rate:.1f} | {ratios[-1]:.2f}x | {1000 * run['server_cpu'] / max(done, 1):.1f}, "
              f"{1000 * run['client_cpu'] / max(done, 1):.1f}, "
              f"{1000 * run['batch_cpu'] / max(len(run['sent']), 1):.1f} |")
    ratio = statistics.median(ratios)
    errors = [message for run in rounds for message in run["errors"]]
    print(f"# serve / batch by round: {', '.join(f'{r:.2f}x' for r in ratios)}; median {ratio:.2f}x. Every answer "
          f"has the batch Pipeline's entities: "
          f"{f'NO ({len(differ)}, {work}/differ.json)' if differ else 'yes'} (largest score difference "
          f"{score_diff:.1g})")
    for message in errors[:5]:
        print(f"# error: {message}")
    print(f"goals: 0 errors: {'met' if not errors else 'NOT met'} ({len(errors)}); "
          f"serve >= 0.8x batch Pipeline (median of rounds): {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.2f}x)")


def baseline(nlp, texts: list[str], repeats: int) -> dict:
    """Batch Pipeline on `texts` in one call, `repeats` times: the records and the median (wall, CPU) seconds."""
    timings = []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        expected = nlp(texts)
        timings.append((time.perf_counter() - started, time.process_time() - cpu))
    wall, cpu_seconds_ = sorted(timings)[len(timings) // 2]
    return {"expected": expected, "batch_seconds": wall, "batch_cpu": cpu_seconds_}


if __name__ == "__main__":
    main()
