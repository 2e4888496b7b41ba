"""Simulated participants and a server in a child process: what the load test, the kill test and the benchmark use.

:func:`run_participant` follows the page's protocol over HTTP: it opens a
session, answers every trial with a random valid answer, and posts each
answer with its own idempotency key until the server acknowledges it
(connection errors and 5xx are retried with backoff, as the page does);
with probability ``repeat_p`` it posts an acknowledged answer once more,
as a page does when an acknowledgement is lost. :class:`ServerProcess`
runs ``ipe experiment serve`` in a child process and reads its URL and
admin token.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ..seeding import stream_rng


@dataclass
class ParticipantLog:
    """What one simulated participant did: ``acked`` maps each acknowledged key to its answer."""

    participant: str
    acked: dict[str, dict] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    repeats: int = 0
    duplicates_seen: int = 0
    completion_code: str | None = None
    errors: list[str] = field(default_factory=list)


def random_answer(widget: str, trial: dict, rng: np.random.Generator):
    """A random valid answer for a trial as the page would post it."""
    lo, hi = trial["low"], trial["high"]
    if widget in ("rating", "count"):
        return int(rng.integers(int(lo), int(hi) + 1))
    if widget == "choice":
        return "left" if rng.random() < 0.5 else "right"
    if widget == "slider":
        return int(rng.integers(0, 101))
    return round(float(rng.uniform(lo, hi)), 4)


async def _post_until_acked(client, url: str, body: dict, log: ParticipantLog, deadline: float,
                            backoff: float = 0.05, timed: bool = True):
    """POST until an answer that is neither a 5xx nor a 408/429 (as the page does); returns ``(status, json)``.
    ``timed``: log the latency of the answer."""
    delay = backoff
    while True:
        t0 = time.perf_counter()
        try:
            r = await client.post(url, json=body)
            log.requests += 1
            if r.status_code < 500 and r.status_code not in (408, 429):
                if timed:
                    log.latencies.append(time.perf_counter() - t0)
                return r.status_code, r.json()
            if time.monotonic() > deadline:
                return r.status_code, r.json()
        except Exception as exc:  # connection refused/reset while the server is down
            log.requests += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"no acknowledgement before the deadline ({type(exc).__name__})") from None
        log.retries += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def run_participant(client, base: str, participant: str, seed: int = 0, repeat_p: float = 0.1,
                          deadline: float | None = None, think: float = 0.0, stop: int | None = None,
                          log: ParticipantLog | None = None) -> ParticipantLog:
    """Walk one participant through practice and test trials over HTTP (see the module docstring).

    ``stop``: answer only this many test trials (a participant who leaves).
    ``think``: seconds between answers. Randomness (answers, repeats) comes
    from the stream named by the participant id (``stream_rng(seed, participant)``). ``log``:
    a log to fill in (watch it from another thread while this runs).
    """
    rng = stream_rng(seed, participant)
    deadline = deadline if deadline is not None else time.monotonic() + 300
    log = log if log is not None else ParticipantLog(participant)
    cfg = (await client.get(f"{base}/api/config")).json()
    status, sess = await _post_until_acked(client, f"{base}/api/session", {"participant": participant}, log, deadline,
                                          timed=False)
    if status != 200:
        log.errors.append(f"session: {status} {sess}")
        return log
    token = sess["token"]
    trials = [("practice", i, t) for i, t in enumerate(sess["practice"])] + \
             [("test", i, t) for i, t in enumerate(sess["test"])]
    if stop is not None:
        trials = trials[:len(sess["practice"]) + stop]
    for phase, i, t in trials:
        body = {"key": f"{participant}-{phase}-{i}-{secrets.token_hex(6)}", "participant": participant,
                "token": token, "phase": phase, "stimulus_id": t["stimulus_id"], "trial_index": i,
                "response": random_answer(cfg["widget"], t, rng), "rt": float(rng.integers(300, 3000))}
        status, data = await _post_until_acked(client, f"{base}/api/responses", body, log, deadline)
        if status != 200:
            log.errors.append(f"{phase} {i}: {status} {data}")
            continue
        log.acked[body["key"]] = body
        if rng.random() < repeat_p:
            log.repeats += 1
            status, data = await _post_until_acked(client, f"{base}/api/responses", body, log, deadline)
            if status == 200 and data.get("status") == "duplicate":
                log.duplicates_seen += 1
            else:
                log.errors.append(f"repeat {phase} {i}: {status} {data}")
        if think:
            await asyncio.sleep(think)
    if stop is None:
        status, data = await _post_until_acked(client, f"{base}/api/complete",
                                               {"participant": participant, "token": token}, log, deadline,
                                               timed=False)
        if status == 200:
            log.completion_code = data["completion_code"]
        else:
            log.errors.append(f"complete: {status} {data}")
    return log


class _Reply:
    def __init__(self, status: int, body: bytes):
        self.status_code = status
        self.content = body

    def json(self):
        return json.loads(self.content.decode("utf-8"))


class LightClient:
    """A minimal HTTP/1.1 keep-alive client (one connection) on asyncio streams, for many simulated participants.

    It has the two calls :func:`run_participant` needs, ``get(url)`` and
    ``post(url, json=...)``, and costs far less CPU per request than a
    full client, so a load test measures the server rather than its
    clients. A broken connection raises ``ConnectionError``; the next
    call reconnects.
    """

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout
        self._rw = None
        self._host = None

    async def _connect(self, host: str, port: int):
        if self._rw is None or self._host != (host, port):
            await self.aclose()
            self._rw = await asyncio.wait_for(asyncio.open_connection(host, port), self.timeout)
            self._host = (host, port)
        return self._rw

    async def request(self, method: str, url: str, body: bytes | None = None) -> _Reply:
        u = urlsplit(url)
        try:
            reader, writer = await self._connect(u.hostname, u.port or 80)
            head = f"{method} {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\nHost: {u.netloc}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"\r\n" + (body or b""))
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), self.timeout)
            if not status_line:
                raise ConnectionError("connection closed")
            status = int(status_line.split(b" ", 2)[1])
            length, close = 0, False
            while True:
                line = await asyncio.wait_for(reader.readline(), self.timeout)
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            data = await asyncio.wait_for(reader.readexactly(length), self.timeout) if length else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as exc:
            await self.aclose()
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        if close:
            await self.aclose()
        return _Reply(status, data)

    async def get(self, url: str) -> _Reply:
        return await self.request("GET", url)

    async def post(self, url: str, json: dict) -> _Reply:  # noqa: A002 - the httpx spelling
        import json as _json

        return await self.request("POST", url, _json.dumps(json).encode("utf-8"))

    async def aclose(self) -> None:
        if self._rw is not None:
            writer = self._rw[1]
            self._rw = None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


async def run_many(base: str, participants: list[str], seed: int = 0, repeat_p: float = 0.1,
                   timeout: float = 300, think: float = 0.0, logs: list | None = None) -> list[ParticipantLog]:
    """Run :func:`run_participant` for every id at once, each on its own keep-alive connection; returns their logs.

    ``logs``: a list that receives the logs as they are created (so another thread can watch them fill).
    """
    own = [ParticipantLog(p) for p in participants]
    if logs is not None:
        logs.extend(own)
    deadline = time.monotonic() + timeout
    clients = [LightClient() for _ in participants]
    try:
        return await asyncio.gather(*(run_participant(c, base, p, seed=seed, repeat_p=repeat_p, deadline=deadline,
                                                      think=think, log=lg)
                                      for c, p, lg in zip(clients, participants, own)))
    finally:
        for c in clients:
            await c.aclose()


class ServerProcess:
    """``ipe experiment serve`` in a child process; :attr:`base` is its URL, :attr:`admin_token` its token."""

    def __init__(self, stimuli: str | Path, db: str | Path, task: str = "will-it-fall", port: int = 0,
                 extra: list[str] | None = None, startup_timeout: float = 90.0):
        self.args = [sys.executable, "-m", "ipe.cli", "experiment", "serve", str(stimuli), "--task", task,
                     "--db", str(db), "--port", str(port), *(extra or [])]
        env = dict(os.environ, IPE_NO_PROGRESS="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.base = ""
        self.admin_token = ""
        self.stderr_lines: list[str] = []
        t_end = time.monotonic() + startup_timeout
        lines = []
        while time.monotonic() < t_end:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()
                raise RuntimeError(f"server exited early ({self.proc.wait()}): {err.strip()[-800:]}")
            lines.append(line)
            m = re.match(r"participant URL: (http://\S+?)/\?id=", line)
            if m:
                self.base = m.group(1)
            m = re.match(r"admin token: (\S+)", line)
            if m:
                self.admin_token = m.group(1)
            if line.startswith("database:"):
                break
        if not self.base or not self.admin_token:
            self.kill()
            raise RuntimeError(f"server did not start: {''.join(lines)[-800:]}")
        self.port = int(self.base.rsplit(":", 1)[1])
        # Keep draining stderr so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL) and wait for the process to end."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill(signal.SIGTERM)
