"""`gplinker serve`: the API gives predict's records for all three tasks, refuses bad requests with a JSON 4xx,
survives inference errors, batches concurrent requests; the real CLI server answers on loopback and shuts down
gracefully on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from gplinker import Pipeline  # noqa: E402
from gplinker.cli import app as cli_app  # noqa: E402
from gplinker.commands.predict import predict_lines  # noqa: E402
from gplinker.predict import Predictor  # noqa: E402
from gplinker.serve.app import create_app  # noqa: E402
from gplinker.serve.batcher import MicroBatcher  # noqa: E402
from tests.live_server import live_server  # noqa: E402
from tests.scratch_models import LONG, TEXTS, random_model_dir  # noqa: E402

TASKS = ("ner", "relation", "event")
ITEMS = {"ner": "entities", "relation": "spo_list", "event": "event_list"}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    return {task: random_model_dir(root / task, task) for task in TASKS}


def client_for(model_dir: Path, pipeline: Pipeline | None = None, **options) -> TestClient:
    """A TestClient (use it as a context manager: that runs the app's startup and shutdown)."""
    nlp = pipeline or Pipeline.from_pretrained(model_dir, device="cpu")
    return TestClient(create_app(nlp, model_dir=model_dir, **options))


def predict_records(model_dir: Path, texts: list[str]) -> list[dict]:
    """What `gplinker predict` writes for lines {"text": t}."""
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in texts]
    out: list[dict] = []
    predict_lines(Predictor.from_pretrained(model_dir, device="cpu"), lines, lambda s: out.append(json.loads(s)))
    return out


@pytest.mark.parametrize("task", TASKS)
def test_predict_answers_the_records_of_gplinker_predict(model_dirs, task):
    texts = TEXTS + [LONG]
    expected = predict_records(model_dirs[task], texts)
    assert sum(len(r[ITEMS[task]]) for r in expected) > 0  # the random model predicts something to compare
    with client_for(model_dirs[task]) as client:
        many = client.post("/predict", json={"texts": texts})
        one = client.post("/predict", json={"text": LONG})
        empty = client.post("/predict", json={"texts": []})
    assert many.status_code == 200 and many.json() == expected
    assert one.status_code == 200 and one.json() == expected[-1]  # a long text, through windows
    assert empty.status_code == 200 and empty.json() == []


def test_schema_health_page_and_docs(model_dirs):
    with client_for(model_dirs["event"]) as client:
        schema = client.get("/schema").json()
        health = client.get("/health").json()
        page = client.get("/")
        script = client.get("/static/app.js")
        openapi = client.get("/openapi.json").json()
    assert schema["task"] == "event" and schema["labels"] == ["出行", "任职"]
    assert ["出行", "目的地"] in schema["schema"]["event_roles"]
    assert health["status"] == "ready" and health["task"] == "event" and health["runtime"] == "torch"
    assert len(health["model_id"]) == 16
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="run"' in page.text and "static/app.js" in page.text
    assert script.status_code == 200 and "function" in script.text
    assert "/predict" in openapi["paths"] and "requestBody" in openapi["paths"]["/predict"]["post"]


def test_model_id_changes_with_the_weights(model_dirs, tmp_path):
    import shutil

    copy = Path(shutil.copytree(model_dirs["ner"], tmp_path / "copy"))
    with client_for(model_dirs["ner"]) as a, client_for(copy) as b:
        first, same = a.get("/health").json()["model_id"], b.get("/health").json()["model_id"]
        weights = copy / "model.safetensors"
        os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    with client_for(copy) as c:
        touched = c.get("/health").json()["model_id"]
    assert first == same  # copytree keeps mtimes: same files, same id
    assert touched != first


BAD_BODIES = [
    (b'{"texts": ["a",', 400, "malformed JSON"),
    (b'{"text": "\xff\xfe bad"}', 400, "not valid UTF-8"),
    (b'["a", "b"]', 422, "expected a JSON object"),
    (b'{"txt": "a"}', 422, 'exactly one of "text"'),
    (b'{"text": "a", "texts": ["b"]}', 422, 'exactly one of "text"'),
    (b'{"text": 3}', 422, '"text" must be a string, got int'),
    (b'{"text": null}', 422, '"text" must be a string, got NoneType'),
    (b'{"texts": "a"}', 422, '"texts" must be a list of strings'),
    (b'{"texts": ["a", {"text": "b"}]}', 422, '"texts[1]" must be a string, got dict'),
    (b'{"text": "\\ud800"}', 422, "unpaired surrogate"),
    (json.dumps({"texts": ["a"] * 5}).encode(), 413, "holds 5 texts, the limit is 4"),
    (json.dumps({"text": "长" * 300}).encode(), 413, "the limit is 512"),
    (b"", 400, "malformed JSON"),
]


def test_every_bad_request_gets_a_json_4xx_and_serving_goes_on(model_dirs):
    with client_for(model_dirs["ner"], max_texts=4, max_bytes=512) as client:
        for body, status, message in BAD_BODIES:
            response = client.post("/predict", content=body, headers={"content-type": "application/json"})
            assert response.status_code == status, (body, response.text)
            assert message in response.json()["error"], (body, response.json())
        missing = client.get("/no-such-page")
        wrong_method = client.get("/predict")
        good = client.post("/predict", json={"text": TEXTS[0]})
    assert missing.status_code == 404 and "error" in missing.json()
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert good.status_code == 200 and good.json()["text"] == TEXTS[0]


class FailingPipeline(Pipeline):
    """A pipeline that raises on the text "boom" (an inference failure)."""

    def stream(self, texts):
        if "boom" in texts:
            raise RuntimeError("the model fell over")
        return super().stream(texts)


def test_an_inference_error_is_a_500_with_a_message_and_the_server_keeps_serving(model_dirs):
    d = model_dirs["ner"]
    failing = FailingPipeline(Predictor.from_pretrained(d, device="cpu"))
    with client_for(d, failing) as client:
        bad = client.post("/predict", json={"texts": ["boom"]})
        good = client.post("/predict", json={"text": TEXTS[1]})
    assert bad.status_code == 500 and "the model fell over" in bad.json()["error"]
    assert good.status_code == 200 and good.json() == predict_records(d, [TEXTS[1]])[0]


class SlowPipeline(Pipeline):
    """A pipeline that takes a second per batch (a big model)."""

    def stream(self, texts):
        time.sleep(1.0)
        return super().stream(texts)


def test_inference_runs_off_the_event_loop(model_dirs):
    d = model_dirs["ner"]
    with client_for(d, SlowPipeline(Predictor.from_pretrained(d, device="cpu"))) as client:
        slow: dict[str, object] = {}
        request = threading.Thread(target=lambda: slow.update(r=client.post("/predict", json={"text": TEXTS[0]})))
        request.start()
        time.sleep(0.3)  # the prediction is now running in the worker thread
        started = time.perf_counter()
        health = client.get("/health")
        waited = time.perf_counter() - started
        request.join(timeout=60)
    assert health.status_code == 200 and waited < 0.5  # answered while the batch ran
    assert slow["r"].status_code == 200


def test_concurrent_requests_are_predicted_in_shared_batches(model_dirs):
    d = model_dirs["ner"]
    n = 12
    expected = predict_records(d, TEXTS)
    responses: dict[int, dict] = {}
    with client_for(d, max_batch=64, max_wait_ms=300) as client:
        batcher = client.app.state.batcher

        def ask(k: int) -> None:
            responses[k] = client.post("/predict", json={"text": TEXTS[k % len(TEXTS)]}).json()

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        health = client.get("/health").json()
    assert [responses[k] for k in range(n)] == [expected[k % len(TEXTS)] for k in range(n)]
    assert health["texts"] == n
    assert health["batches"] == batcher.stats.batches == len(batcher.stats.recent) < n / 2  # a few batches, not 12
    assert sum(batcher.stats.recent) == n


def test_batcher_fills_batches_up_to_max_batch_and_keeps_each_requests_results():
    calls: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append(list(items))
        return [2 * x for x in items]

    async def scenario() -> list[list[int]]:
        batcher = MicroBatcher(double, max_batch=8, max_wait=0.2)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit([3 * k, 3 * k + 1, 3 * k + 2]) for k in range(6)),
                                       batcher.submit(list(range(100, 111))))  # 11 > max_batch: a batch alone
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert results[:6] == [[6 * k, 6 * k + 2, 6 * k + 4] for k in range(6)]
    assert results[6] == [2 * x for x in range(100, 111)]
    assert sorted(len(c) for c in calls) == [6, 6, 6, 11]  # three requests of 3 never fit in 8: pairs
    assert sum(len(c) for c in calls) == 29


def test_with_two_workers_a_closed_loop_of_clients_is_split_and_predicted_side_by_side():
    running, most, calls = 0, 0, []
    lock = threading.Lock()

    def slow_double(items: list[int]) -> list[int]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            calls.append(len(items))
        time.sleep(0.05)
        with lock:
            running -= 1
        return [2 * x for x in items]

    async def scenario() -> list[list[int]]:
        batcher = MicroBatcher(slow_double, max_batch=64, max_wait=0.05, workers=2)
        batcher.start()

        async def client(c: int) -> list[int]:  # 8 clients, each sends its next request once answered
            out = []
            for r in range(3):
                out += await batcher.submit([100 * c + r])
            return out

        results = await asyncio.gather(*(client(c) for c in range(8)))
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert results == [[2 * (100 * c + r) for r in range(3)] for c in range(8)]
    assert most == 2  # two batches ran at once
    assert sum(calls) == 24 and max(calls) <= 4  # the 8 waiting clients were split between the workers, not 8 + 0


def test_split_keeps_whole_requests_in_order_and_balances_their_items():
    from gplinker.serve.batcher import Waiting, split

    def sizes(items: list[int], parts: int) -> list[list[int]]:
        batch = [Waiting(list(range(n)), None, 0.0) for n in items]  # type: ignore[arg-type]
        out = split(batch, parts)
        assert [w for part in out for w in part] == batch  # every request once, in order
        return [[len(w.items) for w in part] for part in out]

    assert sizes([1] * 8, 2) == [[1] * 4, [1] * 4]
    assert sizes([3, 3, 30], 2) == [[3, 3], [30]]  # the big request gets a worker of its own
    assert sizes([1, 10], 2) == [[1], [10]]
    assert sizes([5], 3) == [[5]]  # fewer parts than workers when there is less to share


def test_split_by_size_puts_similar_lengths_together_and_keeps_whole_requests():
    from gplinker.serve.batcher import Waiting, split

    texts = [["a" * 40], ["b" * 3], ["c" * 90, "c"], ["d" * 5], ["e" * 41], ["f" * 4], ["g" * 2]]
    batch = [Waiting(t, None, 0.0) for t in texts]  # type: ignore[arg-type]
    parts = split(batch, 2, len)  # 8 texts, 4 each; a request is ordered by its longest text
    assert [[w.items for w in part] for part in parts] == [[["g" * 2], ["b" * 3], ["f" * 4], ["d" * 5]],
                                                           [["a" * 40], ["e" * 41], ["c" * 90, "c"]]]
    assert split(batch, 1, len) == [batch]  # one part: arrival order, nothing to sort


def test_stop_answers_a_request_still_waiting_for_its_batch_instead_of_leaving_it_hanging():
    async def scenario() -> object:
        batcher = MicroBatcher(lambda items: items, max_batch=8, max_wait=30.0)  # would wait 30 s for company
        batcher.start()
        waiting = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)  # the collector holds it, waiting for more
        await asyncio.wait_for(batcher.stop(), 10)
        return (await asyncio.gather(waiting, return_exceptions=True))[0]

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, RuntimeError) and "stopped before this request was predicted" in str(outcome)


def test_predictor_gives_the_same_records_from_two_threads_at_once(model_dirs):
    d = model_dirs["ner"]
    nlp = Pipeline.from_pretrained(d, device="cpu")
    texts = (TEXTS + [LONG]) * 6
    expected = nlp(texts)
    got: dict[int, list] = {}

    def run(k: int) -> None:
        got[k] = [nlp(texts) for _ in range(3)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert got[0] == got[1] == [expected] * 3


def test_batcher_hands_an_error_to_its_batch_only():
    def fragile(items: list[str]) -> list[str]:
        if "bad" in items:
            raise ValueError("bad item")
        return [x.upper() for x in items]

    async def scenario() -> tuple[object, list[str]]:
        batcher = MicroBatcher(fragile, max_batch=4, max_wait=0.0)
        batcher.start()
        failed = await asyncio.gather(batcher.submit(["bad"]), return_exceptions=True)
        ok = await batcher.submit(["a", "b"])
        await batcher.stop()
        return failed[0], ok

    failed, ok = asyncio.run(scenario())
    assert isinstance(failed, ValueError) and ok == ["A", "B"]


def test_serve_refuses_a_missing_model_dir_and_a_bad_max_batch_with_one_line(model_dirs, tmp_path):
    missing = CliRunner().invoke(cli_app, ["serve", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "is not a gplinker model dir" in " ".join(missing.output.split())
    bad = CliRunner().invoke(cli_app, ["serve", str(model_dirs["ner"]), "--max-batch", "0"])
    assert bad.exit_code == 2 and "--max-batch must be at least 1" in bad.output
    workers = CliRunner().invoke(cli_app, ["serve", str(model_dirs["ner"]), "--workers", "-1"])
    assert workers.exit_code == 2 and "--threads and --workers must be 0 (automatic) or more" in workers.output
    assert "Traceback" not in missing.output + bad.output + workers.output


def test_serve_without_the_extra_names_the_install_command(model_dirs, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` fails as if not installed
    result = CliRunner().invoke(cli_app, ["serve", str(model_dirs["ner"])])
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "pip install 'gplinker[serve]'" in output and "uvicorn" in output


def test_the_cli_server_answers_on_loopback_and_finishes_in_flight_requests_on_sigterm(model_dirs):
    d = model_dirs["relation"]
    with live_server(d, "--max-wait-ms", "1500") as (url, process):
        health = httpx.get(f"{url}/health", timeout=10).json()
        assert health["status"] == "ready" and health["task"] == "relation"
        answer = httpx.post(f"{url}/predict", json={"texts": TEXTS}, timeout=60)
        assert answer.status_code == 200 and answer.json() == predict_records(d, TEXTS)

        in_flight: dict[str, httpx.Response] = {}
        request = threading.Thread(target=lambda: in_flight.update(
            r=httpx.post(f"{url}/predict", json={"text": TEXTS[2]}, timeout=60)))
        request.start()
        time.sleep(0.6)  # the request now waits in the batcher (--max-wait-ms 1500)
        process.send_signal(signal.SIGTERM)
        request.join(timeout=60)
        assert in_flight["r"].status_code == 200 and in_flight["r"].json() == predict_records(d, [TEXTS[2]])[0]
        # uvicorn shuts down (lifespan included), then re-raises SIGTERM so the exit status tells the signal
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in process.stderr.read()


def test_serve_splits_its_threads_over_two_workers_on_a_cpu_by_default(model_dirs):
    import torch

    from gplinker.cli import serve_threads

    nlp = Pipeline.from_pretrained(model_dirs["ner"], device="cpu")
    before = torch.get_num_threads()
    try:
        assert serve_threads(nlp, 4, 0) == 2 and torch.get_num_threads() == 2
        assert serve_threads(nlp, 4, 1) == 1 and torch.get_num_threads() == 4
        assert serve_threads(nlp, 1, 0) == 1 and torch.get_num_threads() == 1  # one thread: one worker
        assert serve_threads(nlp, 3, 4) == 4 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
