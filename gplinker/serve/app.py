"""The HTTP app of `gplinker serve`: a FastAPI factory over a loaded `Pipeline`.

    POST /predict   {"text": "..."} -> one record; {"texts": [...]} -> a list of records, in order
                    (the records `gplinker predict` writes for lines {"text": ...})
    GET  /schema    the task, its labels and the whole label schema
    GET  /health    readiness, the model's id, batching counts
    GET  /          the web page (index.html, static/); /docs and /openapi.json come from FastAPI

Requests are micro-batched (`batcher.MicroBatcher`): concurrent texts are predicted together in a
worker thread. Every refused request gets a 4xx `{"error": "..."}` (`requests.parse_predict_body`);
an inference failure is a 500 `{"error": "..."}` and the server keeps serving.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from gplinker.data.schema import Schema
from gplinker.pipeline import Pipeline, Record
from gplinker.serve.batcher import MicroBatcher
from gplinker.serve.requests import BadRequest, parse_predict_body

PAGE = Path(__file__).parent / "index.html"
STATIC = Path(__file__).parent / "static"  # the page's script and style sheet
MAX_TEXTS = 1024  # texts per request
MAX_BYTES = 4 * 1024 * 1024  # request body

PREDICT_BODY = {  # the OpenAPI description of the body /predict parses by hand (requests.py)
    "required": True,
    "content": {"application/json": {"schema": {
        "oneOf": [
            {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
            {"type": "object", "required": ["texts"],
             "properties": {"texts": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TEXTS}}},
        ]}}},
}


def create_app(pipeline: Pipeline, *, model_dir: str | Path, max_batch: int = 64, max_wait_ms: float = 5.0,
               workers: int = 1, max_texts: int = MAX_TEXTS, max_bytes: int = MAX_BYTES) -> FastAPI:
    """The app serving `pipeline` (loaded from `model_dir`, which /health identifies), `workers` batches at a time."""
    batcher: MicroBatcher[str, Record] = MicroBatcher(lambda texts: list(pipeline.stream(texts)),
                                                      max_batch=max_batch, max_wait=max_wait_ms / 1000,
                                                      workers=workers, size=len)
    identity = model_id(Path(model_dir))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()  # uvicorn calls this after the in-flight requests are answered

    app = FastAPI(title="gplinker", summary=f"{pipeline.task.name} extraction with {Path(model_dir).name}",
                  lifespan=lifespan)
    app.state.batcher = batcher

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.post("/predict", openapi_extra={"requestBody": PREDICT_BODY},
              summary="Predict on one text (one record back) or a list of texts (a list of records)")
    async def predict(request: Request) -> JSONResponse:
        try:
            parsed = parse_predict_body(await read_body(request, max_bytes), max_texts, max_bytes)
        except BadRequest as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        if not parsed.texts:
            return JSONResponse([])
        try:
            records = await batcher.submit(parsed.texts)
        except Exception as exc:  # noqa: BLE001 - the client gets a message, the server keeps serving
            return JSONResponse({"error": f"prediction failed: {type(exc).__name__}: {exc}"}, status_code=500)
        return JSONResponse(records[0] if parsed.single else records)

    @app.get("/schema", summary="The task and its labels")
    async def schema() -> dict[str, Any]:
        return {"task": pipeline.task.name, "labels": labels(pipeline.task.schema),
                "schema": pipeline.task.schema.to_dict()}

    @app.get("/health", summary="Readiness and the model's id")
    async def health() -> dict[str, Any]:
        return {"status": "ready", "task": pipeline.task.name, "model_id": identity, "model_dir": str(model_dir),
                "runtime": "torch" if pipeline.predictor.runtime is None else "onnx",
                "workers": batcher.workers, "batches": batcher.stats.batches, "texts": batcher.stats.items}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, read no further than one byte past `max_bytes` (parse_predict_body refuses it then)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BadRequest(413, f"request body is {declared} bytes, the limit is {max_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            break
    return bytes(body)


def labels(schema: Schema) -> list[str]:
    """The labels a user sees: entity types (NER), predicates (relation), event types (event)."""
    if schema.task == "relation":
        return list(schema.predicates)
    if schema.task == "event":
        return schema.event_types()
    return list(schema.entity_types)


def model_id(model_dir: Path) -> str:
    """A short id of the model: sha256 of config.json and the weights files' names, sizes and mtimes."""
    digest = hashlib.sha256((model_dir / "config.json").read_bytes())
    for name in ("model.safetensors", "model.onnx"):
        weights = model_dir / name
        if weights.is_file():
            stat = weights.stat()
            digest.update(json.dumps([name, stat.st_size, stat.st_mtime_ns]).encode())
    return digest.hexdigest()[:16]
