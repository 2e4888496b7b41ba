"""``ipe experiment simulate``: a class of simulated participants who take a running experiment over HTTP.

For instructors trying a course lab alone, and for the course-lab tutorial's
test: each simulated participant judges by a few noisy simulations
(:func:`ipe.humans.synthesize`, the generative process ``ipe fit``
inverts), then walks through the running server's protocol exactly as the
page does (``/api/config``, ``/api/session``, one ``/api/responses`` per
practice and test trial in the order the server hands out, ``/api/complete``;
see ``docs/experiment-api.md``). The answers land in the experiment's
database like anybody else's, so ``ipe experiment export`` and ``ipe fit``
see nothing special about them.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..seeding import stream_rng
from .common import NoEarlyStopOption, note
from .experiment import experiment_app

SIMULATED_TASKS = ("will-it-fall", "how-many", "probability")
"""Tasks whose answers :func:`ipe.humans.synthesize` can produce."""


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/?id=PARTICIPANT_ID"):
        url = url[: -len("/?id=PARTICIPANT_ID")]
    if not url.startswith("http://") or len(url) <= len("http://"):
        raise InputError(f"URL {url!r}: expected the server's http:// address, e.g. http://127.0.0.1:8000")
    return url


def _answers(stimuli, task_name: str, participants: int, sigma: float, phi: float, seed: int, prefix: str,
             early_stop: bool = True):
    """Every simulated participant's answer to every stimulus: ``{(participant, stimulus_id): value}``."""
    from ..webexperiment.tasks import get_task
    from ..humans import synthesize

    scale = get_task(task_name).scale(stimuli)
    table, _truth = synthesize(stimuli, participants, sigma=sigma, phi=phi, scale=scale, seed=seed,
                               early_stop=early_stop)
    table["participant"] = prefix + "-" + table["participant"].astype(str)
    return {(p, s): float(v) for p, s, v in zip(table["participant"], table["stimulus_id"], table["response"])}


async def _take_part(client, base: str, participant: str, answers: dict, seed: int, deadline: float):
    """One participant's session over HTTP; returns ``(participant, answered, completion_code)``."""
    from ..webexperiment.client import ParticipantLog, _post_until_acked, random_answer

    log = ParticipantLog(participant)
    rng = stream_rng(seed, "simulate-rt", participant)  # response times and practice answers
    cfg = (await client.get(f"{base}/api/config")).json()
    status, sess = await _post_until_acked(client, f"{base}/api/session", {"participant": participant}, log,
                                           deadline, timed=False)
    if status != 200:
        raise InputError(f"participant {participant}: the server refused the session ({status}: "
                         f"{sess.get('error', sess)}); pick another --prefix")
    token = sess["token"]
    trials = [("practice", i, t) for i, t in enumerate(sess["practice"])] + \
             [("test", i, t) for i, t in enumerate(sess["test"])]
    answered = 0
    for phase, i, t in trials:
        value = answers.get((participant, t["stimulus_id"]))
        if value is None:
            if phase == "test":
                raise InputError(f"the server shows stimulus {t['stimulus_id']!r}, which is not in --stimuli")
            value = random_answer(cfg["widget"], t, rng)  # practice trials from another stimulus set
        else:
            value = int(min(max(value, t["low"]), t["high"]))
        body = {"key": f"{participant}-{phase}-{i}", "participant": participant, "token": token, "phase": phase,
                "stimulus_id": t["stimulus_id"], "trial_index": i, "response": value,
                "rt": float(rng.integers(400, 4000))}
        status, data = await _post_until_acked(client, f"{base}/api/responses", body, log, deadline)
        if status != 200:
            raise InputError(f"participant {participant}, {phase} trial {i}: refused ({status}: "
                             f"{data.get('error', data)})")
        answered += phase == "test"
    status, data = await _post_until_acked(client, f"{base}/api/complete", {"participant": participant,
                                                                            "token": token}, log, deadline,
                                           timed=False)
    if status != 200:
        raise InputError(f"participant {participant}: could not complete ({status}: {data.get('error', data)})")
    return participant, answered, data["completion_code"]


async def _run_class(base: str, ids: list[str], answers: dict, seed: int, timeout: float, concurrent: int):
    from ..webexperiment.client import LightClient

    deadline = time.monotonic() + timeout
    gate = asyncio.Semaphore(concurrent)

    async def one(pid):
        async with gate:
            client = LightClient()
            try:
                return await _take_part(client, base, pid, answers, seed, deadline)
            finally:
                await client.aclose()

    return await asyncio.gather(*(one(p) for p in ids))


async def _config(base: str) -> dict:
    from ..webexperiment.client import LightClient

    client = LightClient(timeout=10)
    try:
        reply = await client.get(f"{base}/api/config")
    except ConnectionError as exc:
        raise InputError(f"cannot reach {base} ({exc}); is `ipe experiment serve` running?") from None
    finally:
        await client.aclose()
    if reply.status_code != 200:
        raise InputError(f"{base}/api/config answered {reply.status_code}: not an ipe experiment server")
    return reply.json()


def admin_status(base: str, token: str) -> dict:
    """``GET /admin/status`` with the admin token: participants, completed, responses per phase, task."""
    req = urllib.request.Request(f"{base}/admin/status", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise InputError(f"--admin-token: the server answered {exc.code} (wrong token?)") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(f"cannot reach {base}/admin/status ({exc})") from None


@experiment_app.command("simulate")
def simulate_cmd(
    url: Annotated[str, typer.Argument(help="The running server's address, e.g. http://127.0.0.1:8000.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="The stimulus-set JSON file the server "
                                                                  "serves.")],
    participants: Annotated[int, typer.Option("--participants", "-p", min=1, max=500,
                                              help="Simulated participants.")] = 12,
    sigma: Annotated[float, typer.Option("--sigma", help="Group perceptual noise σ of the class.")] = 0.2,
    phi: Annotated[float, typer.Option("--phi", help="Group force noise φ of the class.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the participants' noise, answers and "
                                                            "response times.")] = 0,
    prefix: Annotated[str, typer.Option("--prefix", help="Participant ids are PREFIX-s00, PREFIX-s01, …")] = "sim",
    concurrent: Annotated[int, typer.Option("--concurrent", min=1, max=200,
                                            help="Participants taking part at the same time.")] = 8,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Give up after this many seconds.")] = 300,
    admin_token: Annotated[Optional[str], typer.Option(
        "--admin-token", envvar="IPE_ADMIN_TOKEN", help="The server's admin token: print /admin/status "
                                                       "afterwards.")] = None,
    no_early_stop: NoEarlyStopOption = False,
) -> None:
    """Send simulated participants (noisy-simulation observers) through a running experiment over HTTP."""
    import re

    from ..scenefile import load_stimuli

    base = _base_url(url)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", prefix):
        raise InputError(f"--prefix {prefix!r}: 1-40 letters, digits, _ . -")
    stim = load_stimuli(stimuli)
    cfg = asyncio.run(_config(base))
    if cfg.get("conditions"):
        raise InputError("the experiment has --conditions; simulate serves experiments without conditions")
    if cfg.get("task") not in SIMULATED_TASKS:
        raise InputError(f"the server runs task {cfg.get('task')!r}; simulate answers "
                         f"{', '.join(SIMULATED_TASKS)}")
    if admin_token:
        admin_status(base, admin_token)  # a wrong token fails before anybody takes part
    note(f"simulating {participants} participant{'s' if participants != 1 else ''} (σ = {sigma:g}, φ = {phi:g}, seed {seed}) on "
         f"{len(stim)} stimuli…")
    answers = _answers(stim, cfg["task"], participants, sigma, phi, seed, prefix, early_stop=not no_early_stop)
    ids = sorted({p for p, _ in answers})
    done = asyncio.run(_run_class(base, ids, answers, seed, timeout, concurrent))
    n = sum(a for _, a, _ in done)
    print(f"{len(done)} participant{'s' if len(done) != 1 else ''} completed {n} test trials at {base} (ids {ids[0]} … {ids[-1]})")
    if admin_token:
        st = admin_status(base, admin_token)
        print(f"server: {st['participants']} participants, {st['completed']} completed, "
              f"{st['responses']['test']} test and {st['responses']['practice']} practice responses "
              f"(task {st['task']})")
