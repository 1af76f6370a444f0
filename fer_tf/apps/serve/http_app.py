"""The HTTP side (Starlette, served by uvicorn): TF Serving's REST paths, `/v1/analyze`, the
health check and the browser page. Every refusal is a JSON `{"error": ...}` with a 4xx status —
a malformed body, a wrong field, a non-image, an unknown model, an oversized body or image, a
wrong method, a missing key; the server never answers with a traceback."""
import asyncio
import base64
import binascii
import json
import os
import re

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fer_tf.apps.serve import tfs_json
from fer_tf.apps.serve.errors import ApiError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# /v1/models/NAME[/versions/N | /labels/L][:verb | /metadata], as TF Serving spells them.
MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                        r"(?::(?P<verb>predict|classify|regress)|/(?P<metadata>metadata))?$")
PUBLIC = ("/healthz", "/", "/static/")


def json_response(body, status=200):
    # allow_nan: TF Serving writes NaN and Infinity as such; Starlette's JSONResponse refuses.
    return Response(json.dumps(body, allow_nan=True, separators=(",", ":")), status,
                    media_type="application/json")


def error_response(status, message):
    return json_response({"error": message}, status)


class Limits:
    """ASGI middleware: the API key on every non-public path, and the body limit — from
    Content-Length before anything is read, else counted while the body streams in."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.state.options.max_body_bytes
        try:
            if not (path in PUBLIC[:2] or path.startswith(PUBLIC[2])):
                self.state.check_key(headers)
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                await self._discard(receive, int(length))
                raise ApiError(413, f"the request body is {int(length):,} bytes; this server takes "
                                    f"at most {limit:,} (--max-body-mb)")
        except ApiError as e:
            return await error_response(e.status, e.message)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise ApiError(413, f"the request body is over {limit:,} bytes (--max-body-mb)")
            return message

        await self.app(scope, limited_receive, send)

    async def _discard(self, receive, length):
        """Read and drop an oversized body (up to 4x the limit) so that a client which sends its
        whole body before reading gets the 413 instead of a broken pipe."""
        if length > 4 * self.state.options.max_body_bytes:
            return
        more = True
        while more:
            message = await asyncio.wait_for(receive(), self.state.options.request_timeout)
            more = message.get("more_body", False)


async def read_body(request, state):
    try:
        return await asyncio.wait_for(request.body(), state.options.request_timeout)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {state.options.request_timeout:g} s "
                            "(--request-timeout)") from None
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected before sending the whole body") from None


async def read_json(request, state):
    body = await read_body(request, state)
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise ApiError(400, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise ApiError(400, "malformed JSON: nested too deeply") from None


async def in_thread(state, function, *args, pool=None):
    """Run blocking work on Starlette's thread pool (or `pool`), within --request-timeout."""
    work = (asyncio.get_running_loop().run_in_executor(pool, function, *args) if pool
            else run_in_threadpool(function, *args))
    try:
        return await asyncio.wait_for(work, state.options.request_timeout)
    except asyncio.TimeoutError:
        raise ApiError(503, f"the request took longer than {state.options.request_timeout:g} s "
                            "(--request-timeout); the server is overloaded or the input too "
                            "large") from None


def create_app(state, lifespan=None):
    """The Starlette app; `lifespan`: an async context manager factory (start-up, shutdown)."""

    async def healthz(request):
        if state.ready:
            return json_response({"status": "ready",
                                  "models": sorted(state.repository.servables)})
        if state.loaded.is_set():
            return error_response(503, f"the models failed to load: {state.error}")
        return json_response({"status": "loading"}, 503)

    async def list_models(request):
        """fer-tf's own addition (TF Serving has no list): what the page offers."""
        state.require_ready()
        def entry(s):
            labels = s.meta.labels if s.meta else None
            return {"name": s.name, "version": s.version, "kind": s.kind and s.kind.name,
                    "classes": labels and labels.classes, "colours": labels and labels.colours,
                    "signatures": sorted(s.signatures.signatures),
                    "batches": {name: {"batches": b.batches, "rows": b.rows,
                                       "busy_seconds": round(b.busy, 3)}
                                for name, b in s.signatures.batchers.items()}}
        servables = state.repository.servables
        return json_response({"default": "default" if "default" in servables else None,
                              "models": [entry(s) for s in servables.values()]})

    async def models(request):
        match = MODEL_PATH.match(request.path_params["rest"])
        if not match:
            raise ApiError(404, f"no such path {request.url.path}: TF Serving's paths are "
                                "/v1/models/NAME[/versions/N][:predict|/metadata]")
        verb, metadata = match["verb"], match["metadata"]
        wanted = "POST" if verb else "GET"
        if request.method != wanted:
            raise ApiError(405, f"{request.method} {request.url.path}: use {wanted}")
        state.require_ready()
        servable = state.repository.get(match["name"], match["version"])
        if metadata:
            return json_response(tfs_json.model_metadata(servable))
        if verb is None:
            return json_response(tfs_json.model_status(servable))
        body = await read_json(request, state)
        name, signature = servable.signature(body.get("signature_name")
                                             if isinstance(body, dict) else None)
        if verb != "predict":
            raise ApiError(400, f"Expected {verb} signature method_name to be "
                                f"tensorflow/serving/{verb}. Was: {signature.method_name}")
        arrays, fmt = tfs_json.parse_predict(body, signature, state.options.max_rows)
        outputs = await in_thread(state, state.predict, servable, name, arrays)
        return json_response(tfs_json.format_predict(outputs, fmt))

    async def analyze(request):
        state.require_ready()
        query = request.query_params
        unknown = set(query) - {"model", "detector", "landmarks", "smile"}
        if unknown:
            raise ApiError(400, f"unknown query parameter(s) {', '.join(sorted(unknown))}: use "
                                "model, detector, landmarks, smile")
        smile = query.get("smile", "true").lower()
        if smile not in ("true", "false", "1", "0"):
            raise ApiError(400, f"smile={smile!r}: use true or false")
        data, source = await photo_of(request)
        result = await in_thread(state, state.analyze, data, source, query.get("model"),
                                 query.get("detector"), query.get("landmarks", "none"),
                                 smile in ("true", "1"), pool=state.analyze_pool)
        return json_response(result)

    async def photo_of(request):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            try:
                form = await asyncio.wait_for(request.form(max_files=1, max_fields=10),
                                              state.options.request_timeout)
            except asyncio.TimeoutError:
                raise ApiError(408, "the upload did not arrive within --request-timeout") from None
            except ApiError:
                raise
            except Exception as e:  # noqa: BLE001 — the multipart parser's own errors
                raise ApiError(400, f"malformed multipart body: {getattr(e, 'detail', e)}") from None
            upload = next((v for v in form.values() if hasattr(v, "read")), None)
            if upload is None:
                raise ApiError(400, "the multipart form has no file: send the photo as a file "
                                    "field (e.g. -F image=@photo.jpg)")
            return await upload.read(), upload.filename or "upload"
        if kind == "application/json":
            body = await read_json(request, state)
            value = body.get("image", body) if isinstance(body, dict) else None
            if not (isinstance(value, dict) and isinstance(value.get("b64"), str)):
                raise ApiError(400, "a JSON body must be {\"image\": {\"b64\": \"<base64 photo>\"}}")
            try:
                return base64.b64decode(value["b64"], validate=True), body.get("name", "upload")
            except (binascii.Error, ValueError):
                raise ApiError(400, "\"b64\" is not valid base64") from None
        data = await read_body(request, state)
        if not data:
            raise ApiError(400, "empty body: send a photo (raw bytes, multipart or JSON b64)")
        return data, "upload"

    async def index(request):
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    async def api_error(request, error):
        return error_response(error.status, error.message)

    async def http_error(request, error):
        if error.status_code == 405:
            return error_response(405, f"{request.method} is not allowed on {request.url.path}")
        if error.status_code == 404:
            return error_response(404, f"no such path {request.url.path}")
        return error_response(error.status_code, str(error.detail))

    async def unexpected(request, error):
        # Never a traceback: one line, and the server goes on.
        return error_response(500, f"internal error ({type(error).__name__}); the server "
                                   "keeps running — please report it")

    routes = [Route("/healthz", healthz, methods=["GET"]),
              Route("/v1/models", list_models, methods=["GET"]),
              Route("/v1/models/{rest:path}", models, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
              Route("/v1/analyze", analyze, methods=["POST"]),
              Route("/", index, methods=["GET"]),
              Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
    app = Starlette(routes=routes, exception_handlers={ApiError: api_error,
                                                       HTTPException: http_error,
                                                       Exception: unexpected},
                    lifespan=lifespan)
    app.add_middleware(Limits, state=state)
    return app
