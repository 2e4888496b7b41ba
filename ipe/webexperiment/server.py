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

Every text field has one rule, declared once in :data:`FIELD_RULES` and
always matched in full (``re.fullmatch``: no trailing newline slips through).
An answer must be for the stimulus at that trial index of the participant's
own order, and none is taken after the participant completed. Session
creation and answers are rate-limited per client and overall
(:class:`RateLimits`, with the ``limits`` library); with ``signed_links``
a new participant id needs the instructor's HMAC signature
(``ipe experiment links``). The guarantees and their tests are listed in
``docs/experiment-api.md`` ("Guarantees").
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import socket
import sqlite3
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import InputError
from ..validation import Integer, Number
from .export import integers_when_whole, iso_times, response_table
from .materials import PARTICIPANT_RE, Materials
from .store import Store, StoreUnavailable

_INTEGER = Integer()
RT_MS = Number(0, 86_400_000)
"""Rule of a posted ``rt``: milliseconds, finite, at most a day."""

MAX_BODY = 8 * 1024
"""Largest request body accepted (bytes); larger ones get 413."""

STATIC_DIR = Path(__file__).parent / "static"
_STATIC_NAME = re.compile(r"[A-Za-z0-9_\-]+\.(?:js|css|html|svg|ico)")
_MEDIA = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
          "html": "text/html; charset=utf-8", "svg": "image/svg+xml", "ico": "image/x-icon"}
KEY_RE = re.compile(r"[A-Za-z0-9_\-:.]{8,128}")
"""Idempotency keys: 8–128 characters from letters, digits and ``_ - : .``."""
TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{16,128}")
"""Session tokens (the server makes 32-character URL-safe ones)."""
SIG_RE = re.compile(r"[A-Za-z0-9_\-]{22}")
"""Signatures of instructor-signed links (see :meth:`ipe.webexperiment.store.Store.link_signature`)."""
ADMIN_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-.~+/=]{16,256}")
"""Admin tokens: 16–256 characters from letters, digits and ``_ - . ~ + / =``."""
INDEX_RE = re.compile(r"[0-9]{1,6}")
"""Stimulus numbers in URLs: ASCII digits only (``str.isdigit`` also takes "²" and "①")."""
STIMULUS_ID_MAX = 200

FIELD_RULES: dict[str, re.Pattern] = {
    "participant": PARTICIPANT_RE, "condition": PARTICIPANT_RE, "token": TOKEN_RE, "key": KEY_RE, "sig": SIG_RE,
}
"""The one allow-list of each text field of a request body (matched in full)."""

MAX_NUMBER = 2 ** 53
"""Numbers (``response``, ``rt``) are refused beyond ±2**53 before any conversion (no OverflowError)."""

DEFAULT_RATES = {"sessions": "30/minute", "sessions_total": "300/minute",
                 "answers": "600/minute", "answers_total": "6000/minute"}
"""Default rate limits (``limits`` notation) on ``POST /api/session`` and ``POST /api/responses``: per client
address and over all clients. A class behind one address (NAT) shares the per-client limit; raise it with
``ipe experiment serve --session-rate``/``--answer-rate``. The page retries a 429 after its ``Retry-After``."""

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
]


class HTTPError(Exception):
    """A 4xx answer: ``status`` and a one-line ``message`` (plus optional headers)."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class RateLimits:
    """Rate limits per client address and overall, kept by the ``limits`` library (sliding window, in memory).

    ``rates`` maps ``sessions``, ``sessions_total``, ``answers``, ``answers_total`` to a ``limits`` string
    such as ``"30/minute"`` (or ``None``: no limit); missing names take :data:`DEFAULT_RATES`.
    """

    def __init__(self, rates: dict[str, str | None] | None = None):
        from limits import parse_many, storage, strategies

        self.rates = {**DEFAULT_RATES, **(rates or {})}
        unknown = set(self.rates) - set(DEFAULT_RATES)
        if unknown:
            raise ValueError(f"unknown rate limit(s): {', '.join(sorted(unknown))}")
        self._items = {}
        for name, spec in self.rates.items():
            if spec is None:
                continue
            try:
                self._items[name] = parse_many(spec)
            except ValueError:
                raise ValueError(f"rate limit {name}: {spec!r} is not like '30/minute'") from None
        self._limiter = strategies.SlidingWindowCounterRateLimiter(storage.MemoryStorage())

    def hit(self, what: str, client: str) -> None:
        """Count one request of kind ``what`` (``sessions``/``answers``) from ``client``; 429 when over a limit."""
        for name, key in ((what, client), (what + "_total", "*")):
            for item in self._items.get(name, ()):
                if not self._limiter.hit(item, name, key):
                    reset = self._limiter.get_window_stats(item, name, key).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    scope = "from this address" if key != "*" else "from all clients together"
                    raise HTTPError(429, f"too many {'new sessions' if what == 'sessions' else 'answers'} "
                                         f"{scope} (limit {item}); retry in {wait} s",
                                    headers={"retry-after": str(wait)})


def _reject_constant(name):
    raise HTTPError(400, f"body is not valid JSON ({name} is not allowed)")


async def read_json(request: Request) -> dict:
    """The request's JSON object, enforcing the content type and :data:`MAX_BODY`."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPError(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not re.fullmatch(r"[0-9]{1,18}", declared):  # ASCII digits only, bounded before int()
            raise HTTPError(400, "bad Content-Length")
        if int(declared) > MAX_BODY:
            raise HTTPError(413, f"body larger than {MAX_BODY} bytes")
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
        raise HTTPError(422, f"unknown field(s): {', '.join(repr(u[:40]) for u in unknown[:5])}")
    missing = sorted(required - set(data))
    if missing:
        raise HTTPError(422, f"missing field(s): {', '.join(missing)}")


def _text(data: dict, name: str, optional: bool = False) -> str | None:
    """Field ``name`` of a body: a string matching its rule in :data:`FIELD_RULES` in full (never stripped)."""
    v = data.get(name)
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise HTTPError(422, f"{name} must be a string")
    pattern = FIELD_RULES.get(name)
    if pattern is not None and not pattern.fullmatch(v):
        raise HTTPError(422, f"{name} {v[:40]!r} has a bad format")
    return v


def _participant(data: dict) -> str:
    return _text(data, "participant")


def _number(data: dict, name: str):
    """A JSON number field, refused (422) when it is a bool or an integer beyond ±:data:`MAX_NUMBER`."""
    v = data.get(name)
    if _INTEGER.accepts(v) and not -MAX_NUMBER <= v <= MAX_NUMBER:
        raise HTTPError(422, f"{name} is out of range")
    return v


def _bearer(request: Request) -> str | None:
    """The admin token of an ``Authorization: Bearer TOKEN`` header, matched in full; ``None`` otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and ADMIN_TOKEN_RE.fullmatch(token) else None


LINK_COOKIE = "ipe_link"
"""Cookie that carries a signed link's ``SIG:ID`` from the page's URL to ``POST /api/session``."""


class ExperimentApp:
    """The ASGI application of one experiment: :attr:`app` (Starlette) over ``materials`` and ``store``."""

    def __init__(self, materials: Materials, store: Store, cors_origins: tuple[str, ...] = (),
                 rates: dict[str, str | None] | None = None, signed_links: bool = False):
        self.materials = materials
        self.store = store
        self.limits = RateLimits(rates)
        self.signed_links = signed_links
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
        app = Starlette(routes=routes, exception_handlers={HTTPError: self._http_error,
                                                           StarletteHTTPException: self._starlette_error,
                                                           StoreUnavailable: self._unavailable,
                                                           sqlite3.Error: self._unavailable,
                                                           Exception: self._internal})
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
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @staticmethod
    async def _starlette_error(request: Request, exc: StarletteHTTPException):
        # Unknown routes (404) and wrong methods (405): the same one-line JSON as every other error.
        msg = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail)[:200])
        return JSONResponse({"error": msg}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @staticmethod
    async def _unavailable(request: Request, exc: Exception):
        # The database cannot be written (disk full, files made read-only, I/O error): not the client's fault,
        # nothing was stored, and the page retries a 503. One line on stderr for the experimenter.
        msg = " ".join(str(exc).split())[:200]
        print(f"ipe experiment: cannot store ({msg}); answering 503", file=sys.stderr, flush=True)
        return JSONResponse({"error": f"the server cannot store answers right now ({msg}); try again later"},
                            status_code=503, headers={"retry-after": "5"})

    @staticmethod
    async def _internal(request: Request, exc: Exception):
        msg = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        print(f"ipe experiment: internal error on {request.method} {request.url.path[:100]}: {msg}",
              file=sys.stderr, flush=True)
        return JSONResponse({"error": "internal error"}, status_code=500)

    # ------------------------------------------------------------------ page

    async def index(self, request: Request):
        resp = FileResponse(STATIC_DIR / "index.html", media_type=_MEDIA["html"])
        q = request.query_params
        pid = q.get("id") or q.get("PROLIFIC_PID") or q.get("SONA_ID")  # the page's order (static/app.js)
        sig = q.get("sig")
        if pid is not None and sig is not None and PARTICIPANT_RE.fullmatch(pid) and SIG_RE.fullmatch(sig):
            # The page posts only the id; the signature rides along as a cookie of this origin's API.
            resp.set_cookie(LINK_COOKIE, f"{sig}:{pid}", max_age=7 * 86400, path="/api/", httponly=True,
                            samesite="strict")
        return resp

    def _link_signature(self, request: Request, data: dict, participant: str) -> str | None:
        sig = _text(data, "sig", optional=True)
        if sig is None:
            cookie = request.cookies.get(LINK_COOKIE, "")
            c_sig, _, c_pid = cookie.partition(":")
            if c_pid == participant and SIG_RE.fullmatch(c_sig):
                sig = c_sig
        return sig

    async def static(self, request: Request):
        name = request.path_params["name"]
        # Starlette's route pattern ends in "$", which also matches before a trailing newline: check the whole path.
        if not _STATIC_NAME.fullmatch(name) or request.scope.get("path") != "/static/" + name:
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
        self.limits.hit("sessions", _client(request))
        data = await read_json(request)
        _fields(data, {"participant", "condition", "token", "sig"}, {"participant"})
        participant = _participant(data)
        condition = _text(data, "condition", optional=True)
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
        if self.signed_links and not self.store.check_link(participant, self._link_signature(request, data,
                                                                                             participant)):
            raise HTTPError(403, "this experiment needs the personal link your experimenter gave you "
                                 "(this id has no valid signature)")
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
        if not INDEX_RE.fullmatch(text):
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
        key = _text(data, "key")
        participant = _participant(data)
        token = _text(data, "token")
        phase = data.get("phase", "test")
        if phase not in ("test", "practice"):
            raise HTTPError(422, "phase must be 'test' or 'practice'")
        sid = _text(data, "stimulus_id")
        m = self.materials
        idx = m.index(sid, phase) if len(sid) <= STIMULUS_ID_MAX else None
        if idx is None:
            raise HTTPError(422, f"unknown stimulus_id {sid[:40]!r} for the {phase} phase")
        ti = data["trial_index"]
        n = m.n_practice if phase == "practice" else m.n_test
        if not Integer(0, n - 1).accepts(ti):
            raise HTTPError(422, f"trial_index must be an integer in 0..{n - 1}")
        rt = _number(data, "rt")
        if rt is not None:
            if not RT_MS.accepts(rt):
                raise HTTPError(422, "rt must be a number of milliseconds in 0..86400000")
            rt = float(rt)
        try:
            value = m.task.parse(_number(data, "response"), m.stimuli[idx], m.frames[idx])
        except (ValueError, OverflowError) as exc:
            raise HTTPError(422, " ".join(str(exc).split())[:200]) from None
        if not self.store.check_token(participant, token):
            raise HTTPError(403, "wrong session token for this participant")
        # The stimulus must be the one this participant sees at this trial index.
        expected = ti if phase == "practice" else m.order(participant)[ti]
        if idx != expected:
            raise HTTPError(422, f"stimulus_id {sid[:40]!r} is not trial {ti} of this participant's {phase} trials")
        return {"key": key, "participant": participant, "phase": phase, "stimulus_id": sid, "response": value,
                "rt": rt, "trial_index": ti, "condition": None}

    async def responses(self, request: Request):
        self.limits.hit("answers", _client(request))
        data = await read_json(request)
        row = self._response_row(data)
        row["condition"] = self.store.condition(row["participant"])
        # Resolves only after the writer thread has committed the row (see ipe.webexperiment.store).
        outcome = await asyncio.wrap_future(self.store.add_response_future(row))
        if outcome.status in ("conflict", "closed"):
            raise HTTPError(409, outcome.message)
        return JSONResponse({"status": outcome.status, "key": row["key"]})

    async def complete(self, request: Request):
        data = await read_json(request)
        _fields(data, {"participant", "token"}, {"participant", "token"})
        participant = _participant(data)
        token = _text(data, "token")
        if not await run_in_threadpool(self.store.check_token, participant, token):
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


        self._admin(request)
        parts = await run_in_threadpool(self.store.participants)
        buf = io.StringIO()
        table = pd.DataFrame(parts, columns=["participant", "condition", "created", "completed", "completion_code"])
        iso_times(table, ("created", "completed")).to_csv(buf, index=False, lineterminator="\n")
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8")


def _client(request: Request) -> str:
    """The client's address (the key of the per-client rate limits)."""
    return request.client.host if request.client else "unknown"


def create_app(materials: Materials, store: Store, cors_origins: tuple[str, ...] = (),
               rates: dict[str, str | None] | None = None, signed_links: bool = False) -> ExperimentApp:
    """The ASGI app serving ``materials`` and recording into ``store``.

    ``rates``: rate limits overriding :data:`DEFAULT_RATES` (``None`` for a name: no limit).
    ``signed_links``: a new participant id needs its link's signature (``ipe experiment links``).
    """
    return ExperimentApp(materials, store, tuple(cors_origins), rates, signed_links)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port), with ``SO_REUSEADDR``."""

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
