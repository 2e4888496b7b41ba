"""The experiment server: a small Starlette app over the SQLite store (see ``docs/experiment-api.md``).

Participant routes (JSON): ``GET /api/config``, ``POST /api/session``,
``GET /api/images/{n}.png``, ``GET /api/feedback/{n}`` (practice trials
only), ``POST /api/responses``, ``POST /api/complete``. Admin routes need
``Authorization: Bearer <admin token>``: ``GET /admin/status``,
``GET /admin/responses.csv``, ``GET /admin/participants.csv``. The page
is ``GET /`` plus files under ``/static/``.

Every request body is JSON (``Content-Type: application/json``) of at
most :data:`MAX_BODY` bytes, an object with known fields of the right
types; anything else gets a 4xx with ``{"error": "..."}`` and stores
nothing. A response is committed to SQLite before the 200 goes out.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import socket
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .materials import PARTICIPANT_RE, Materials
from .store import Store

MAX_BODY = 8 * 1024
"""Largest request body accepted (bytes); larger ones get 413."""

STATIC_DIR = Path(__file__).parent / "static"
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_\-]+\.(?:js|css|html|svg|ico)$")
_MEDIA = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
          "html": "text/html; charset=utf-8", "svg": "image/svg+xml", "ico": "image/x-icon"}
KEY_RE = re.compile(r"^[A-Za-z0-9_\-:.]{8,128}$")
"""Idempotency keys: 8–128 characters from letters, digits and ``_ - : .``."""

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
]


class HTTPError(Exception):
    """A 4xx answer: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name):
    raise HTTPError(400, f"body is not valid JSON ({name} is not allowed)")


async def read_json(request: Request) -> dict:
    """The request's JSON object, enforcing the content type and :data:`MAX_BODY`."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPError(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > MAX_BODY:
                raise HTTPError(413, f"body larger than {MAX_BODY} bytes")
        except ValueError:
            raise HTTPError(400, "bad Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPError(413, f"body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks).decode("utf-8"), parse_constant=_reject_constant)
    except HTTPError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise HTTPError(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPError(422, "body must be a JSON object")
    return data


def _fields(data: dict, allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise HTTPError(422, f"unknown field(s): {', '.join(u[:40] for u in unknown[:5])}")
    missing = sorted(required - set(data))
    if missing:
        raise HTTPError(422, f"missing field(s): {', '.join(missing)}")


def _text(data: dict, name: str, pattern: re.Pattern | None = None, optional: bool = False) -> str | None:
    v = data.get(name)
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise HTTPError(422, f"{name} must be a string")
    if pattern is not None and not pattern.match(v):
        raise HTTPError(422, f"{name} {v[:40]!r} has a bad format")
    return v


def _participant(data: dict) -> str:
    return _text(data, "participant", PARTICIPANT_RE)


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class ExperimentApp:
    """The ASGI application of one experiment: :attr:`app` (Starlette) over ``materials`` and ``store``."""

    def __init__(self, materials: Materials, store: Store, cors_origins: tuple[str, ...] = ()):
        self.materials = materials
        self.store = store
        routes = [
            Route("/", self.index, methods=["GET"]),
            Route("/static/{name:path}", self.static, methods=["GET"]),
            Route("/api/config", self.config, methods=["GET"]),
            Route("/api/session", self.session, methods=["POST"]),
            Route("/api/images/{name}", self.image, methods=["GET"]),
            Route("/api/feedback/{n}", self.feedback, methods=["GET"]),
            Route("/api/responses", self.responses, methods=["POST"]),
            Route("/api/complete", self.complete, methods=["POST"]),
            Route("/admin/status", self.admin_status, methods=["GET"]),
            Route("/admin/responses.csv", self.admin_responses, methods=["GET"]),
            Route("/admin/participants.csv", self.admin_participants, methods=["GET"]),
        ]
        app = Starlette(routes=routes, exception_handlers={HTTPError: self._http_error})
        if cors_origins:
            from starlette.middleware.cors import CORSMiddleware

            app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                               allow_headers=["content-type", "authorization"])
        self.starlette = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.starlette(scope, receive, send)
        is_api = scope.get("path", "").startswith(("/api/", "/admin/"))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if is_api and not scope["path"].startswith("/api/images/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.starlette(scope, receive, send_with_headers)

    @staticmethod
    async def _http_error(request: Request, exc: HTTPError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    # ------------------------------------------------------------------ page

    async def index(self, request: Request):
        return FileResponse(STATIC_DIR / "index.html", media_type=_MEDIA["html"])

    async def static(self, request: Request):
        name = request.path_params["name"]
        if not _STATIC_NAME.match(name):
            raise HTTPError(404, "not found")
        path = (STATIC_DIR / name).resolve()
        if path.parent != STATIC_DIR.resolve() or not path.is_file():
            raise HTTPError(404, "not found")
        return FileResponse(path, media_type=_MEDIA[name.rsplit(".", 1)[1]])

    # ------------------------------------------------------------------ participant API

    async def config(self, request: Request):
        return JSONResponse(self.materials.public_config())

    def _session_body(self, participant: str, token: str, condition: str | None) -> dict:
        m = self.materials
        p = self.store.participant(participant)
        done = self.store.answered(participant)
        return {"participant": participant, "token": token, "condition": condition,
                "practice": [m.trial_info(i) for i in range(m.n_practice)],
                "test": [m.trial_info(i) for i in m.order(participant)],
                "answered": done, "completed": bool(p and p["completed"]),
                "completion_code": p["completion_code"] if p and p["completed"] else None}

    async def session(self, request: Request):
        data = await read_json(request)
        _fields(data, {"participant", "condition", "token"}, {"participant"})
        participant = _participant(data)
        condition = _text(data, "condition", PARTICIPANT_RE, optional=True)
        token = _text(data, "token", optional=True)
        conditions = self.materials.config.conditions
        if conditions and condition is None:
            raise HTTPError(422, f"condition is required: one of {', '.join(conditions)}")
        if condition is not None and condition not in conditions:
            raise HTTPError(422, f"unknown condition {condition[:40]!r}")
        existing = await run_in_threadpool(self.store.participant, participant)
        if existing is not None:
            if not self.store.check_token(participant, token):
                raise HTTPError(403, "this participant id already has a session; continue in the browser where "
                                     "it started, or ask the experimenter")
            body = await run_in_threadpool(self._session_body, participant, token, existing["condition"])
            return JSONResponse(body)
        new = await run_in_threadpool(self.store.create_participant, participant, condition)
        if new is None:  # created by a concurrent request a moment ago
            raise HTTPError(403, "this participant id already has a session")
        body = await run_in_threadpool(self._session_body, participant, new, condition)
        return JSONResponse(body)

    def _index_param(self, text: str, suffix: str = "") -> int:
        if suffix:
            if not text.endswith(suffix):
                raise HTTPError(404, "not found")
            text = text[: -len(suffix)]
        if not text.isdigit() or len(text) > 6:
            raise HTTPError(404, "not found")
        n = int(text)
        if n >= len(self.materials.stimuli):
            raise HTTPError(404, "not found")
        return n

    async def image(self, request: Request):
        n = self._index_param(request.path_params["name"], ".png")
        return Response(self.materials.images[n], media_type="image/png",
                        headers={"cache-control": "public, max-age=3600"})

    async def feedback(self, request: Request):
        n = self._index_param(request.path_params["n"])
        if n >= self.materials.n_practice:  # test trials' outcomes are never shown
            raise HTTPError(404, "not found")
        return JSONResponse(self.materials.animations[n])

    def _response_row(self, data: dict) -> dict:
        _fields(data, {"key", "participant", "token", "stimulus_id", "response", "rt", "trial_index", "phase"},
                {"key", "participant", "token", "stimulus_id", "response", "trial_index"})
        key = _text(data, "key", KEY_RE)
        participant = _participant(data)
        token = _text(data, "token")
        phase = data.get("phase", "test")
        if phase not in ("test", "practice"):
            raise HTTPError(422, "phase must be 'test' or 'practice'")
        sid = _text(data, "stimulus_id")
        m = self.materials
        idx = m.index(sid, phase) if len(sid) <= 200 else None
        if idx is None:
            raise HTTPError(422, f"unknown stimulus_id {sid[:40]!r} for the {phase} phase")
        ti = data["trial_index"]
        n = m.n_practice if phase == "practice" else m.n_test
        if isinstance(ti, bool) or not isinstance(ti, int) or not 0 <= ti < n:
            raise HTTPError(422, f"trial_index must be an integer in 0..{n - 1}")
        rt = data.get("rt")
        if rt is not None:
            if isinstance(rt, bool) or not isinstance(rt, (int, float)) or not math.isfinite(rt) \
                    or not 0 <= rt <= 86_400_000:
                raise HTTPError(422, "rt must be a number of milliseconds in 0..86400000")
            rt = float(rt)
        try:
            value = m.task.parse(data["response"], m.stimuli[idx], m.frames[idx])
        except ValueError as exc:
            raise HTTPError(422, str(exc)) from None
        if not self.store.check_token(participant, token):
            raise HTTPError(403, "wrong session token for this participant")
        return {"key": key, "participant": participant, "phase": phase, "stimulus_id": sid, "response": value,
                "rt": rt, "trial_index": ti, "condition": None}

    async def responses(self, request: Request):
        data = await read_json(request)
        row = self._response_row(data)
        row["condition"] = self.store.condition(row["participant"])
        # Resolves only after the writer thread has committed the row (see ipe.experiment.store).
        outcome = await asyncio.wrap_future(self.store.add_response_future(row))
        if outcome.status == "conflict":
            raise HTTPError(409, outcome.message)
        return JSONResponse({"status": outcome.status, "key": row["key"]})

    async def complete(self, request: Request):
        data = await read_json(request)
        _fields(data, {"participant", "token"}, {"participant", "token"})
        participant = _participant(data)
        if not await run_in_threadpool(self.store.check_token, participant, _text(data, "token")):
            raise HTTPError(403, "wrong session token for this participant")
        done = await run_in_threadpool(self.store.answered, participant)
        missing = self.materials.n_test - len(done["test"])
        if missing:
            raise HTTPError(409, f"{missing} test trial(s) not answered yet")
        code = self.store.completion_code(participant, self.materials.config.completion_code)
        code = await run_in_threadpool(self.store.complete, participant, code)
        return JSONResponse({"completion_code": code})

    # ------------------------------------------------------------------ admin

    def _admin(self, request: Request) -> None:
        if not self.store.check_admin(_bearer(request)):
            raise HTTPError(401, "admin token required (Authorization: Bearer TOKEN)")

    async def admin_status(self, request: Request):
        self._admin(request)
        parts = await run_in_threadpool(self.store.participants)
        return JSONResponse({"participants": len(parts), "completed": sum(1 for p in parts if p["completed"]),
                             "responses": {"test": self.store.count("test"),
                                           "practice": self.store.count("practice")},
                             "n_test": self.materials.n_test, "n_practice": self.materials.n_practice,
                             "task": self.materials.task.name})

    async def admin_responses(self, request: Request):
        from .export import integers_when_whole, response_table

        self._admin(request)
        phase = request.query_params.get("phase", "test")
        if phase not in ("test", "practice"):
            raise HTTPError(422, "phase must be test or practice")
        table = await run_in_threadpool(response_table, self.store, self.materials, phase, False)
        buf = io.StringIO()
        integers_when_whole(table).to_csv(buf, index=False, lineterminator="\n")
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8")

    async def admin_participants(self, request: Request):
        import pandas as pd

        from .export import iso_times

        self._admin(request)
        parts = await run_in_threadpool(self.store.participants)
        buf = io.StringIO()
        table = pd.DataFrame(parts, columns=["participant", "condition", "created", "completed", "completion_code"])
        iso_times(table, ("created", "completed")).to_csv(buf, index=False, lineterminator="\n")
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8")


def create_app(materials: Materials, store: Store, cors_origins: tuple[str, ...] = ()) -> ExperimentApp:
    """The ASGI app serving ``materials`` and recording into ``store``."""
    return ExperimentApp(materials, store, tuple(cors_origins))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port), with ``SO_REUSEADDR``."""
    from ..errors import InputError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
    # it every keep-alive answer (headers, then body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def serve(app: ExperimentApp, host: str = "127.0.0.1", port: int = 8000, out=None) -> None:
    """Listen on ``host:port``, print the participant URL and the admin token, and serve until interrupted."""
    import uvicorn

    out = out or sys.stdout
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"participant URL: http://{shown}:{real_port}/?id=PARTICIPANT_ID", file=out)
    print(f"admin token: {app.store.admin_token}", file=out)
    print(f"database: {app.store.path} ({app.materials.n_practice} practice + {app.materials.n_test} test trials, "
          f"task {app.materials.task.name})", file=out, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
