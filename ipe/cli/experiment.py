"""``ipe experiment``: serve the browser experiment and export what it collected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..validation import OneOf, check
from .app import group
from .common import NoEarlyStopOption, check_out, check_out_dir, note

experiment_app = group("experiment", "The browser experiment: serve it, export its responses and materials.")

#: ``export --phase``: which trials' responses.
PHASES = OneOf("test", "practice", description="test or practice")
#: ``links --param``: the query parameter that carries the participant id.
LINK_PARAMS = OneOf("id", "PROLIFIC_PID", "SONA_ID", description="id, PROLIFIC_PID or SONA_ID")


def _read_text(path: Optional[Path], what: str) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path}: cannot read ({exc})") from None
    if not text:
        raise InputError(f"{what} {path}: the file is empty")
    if len(text) > 20000:
        raise InputError(f"{what} {path}: longer than 20000 characters")
    return text


_RATE_RE = r"[1-9][0-9]{0,8}/(second|minute|hour|day)"


def _rates(opts: dict[str, str | None]) -> dict[str, str | None]:
    """The four rate-limit options as :class:`ipe.webexperiment.server.RateLimits` names (``off``: no limit)."""
    names = {"--session-rate": "sessions", "--session-rate-total": "sessions_total", "--answer-rate": "answers",
             "--answer-rate-total": "answers_total"}
    out: dict[str, str | None] = {}
    for opt, value in opts.items():
        if value is None:
            continue
        if value == "off":
            out[names[opt]] = None
        elif re.fullmatch(_RATE_RE, value):
            out[names[opt]] = value
        else:
            raise InputError(f"{opt} {value!r}: expected COUNT/UNIT (unit second, minute, hour or day), or off")
    return out


def _id_list(spec: str) -> list[str]:
    """``--ids``: comma-separated ids and ranges of whole numbers (``1-200,alice,p007``)."""
    from ..webexperiment.materials import PARTICIPANT_RE

    ids: list[str] = []
    for part in spec.split(","):
        m = re.fullmatch(r"([0-9]{1,9})-([0-9]{1,9})", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a or b - a >= 100_000:
                raise InputError(f"--ids {part!r}: a range FIRST-LAST with FIRST <= LAST and at most 100000 ids")
            ids.extend(str(i) for i in range(a, b + 1))
        elif PARTICIPANT_RE.fullmatch(part):
            ids.append(part)
        else:
            raise InputError(f"--ids: {part[:40]!r} is neither an id (1-64 letters, digits, _ . -) nor a range "
                             "such as 1-200")
    if len(set(ids)) != len(ids):
        raise InputError("--ids: an id is given twice")
    if len(ids) > 100_000:
        raise InputError("--ids: at most 100000 ids")
    return ids


# Over 60 lines only because typer reads the command's 23 options from its signature (the body is 25 lines).
@experiment_app.command("serve")
def serve_cmd(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    task: Annotated[str, typer.Option("--task", help="will-it-fall, how-many, probability, direction or landing.")],
    db: Annotated[Path, typer.Option("--db", help="SQLite database (created if missing; reopened to resume).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default: this machine only).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")] = 8000,
    practice: Annotated[int, typer.Option("--practice", min=0, help="The first N stimuli are practice trials "
                                                                    "with feedback.")] = 2,
    practice_stimuli: Annotated[Optional[Path], typer.Option(
        "--practice-stimuli", help="Practice trials from this stimulus set instead (then every stimulus of "
                                   "STIMULI is a test trial).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the per-participant trial orders.")] = 0,
    title: Annotated[str, typer.Option("--title", help="Page title.")] = "Physics judgments",
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="The question (default: the task's).")] = None,
    consent: Annotated[Optional[Path], typer.Option("--consent", help="Text file with the consent form "
                                                                      "(paragraphs split by blank lines).")] = None,
    instructions: Annotated[Optional[Path], typer.Option("--instructions", help="Text file with the "
                                                                                "instructions.")] = None,
    completion_code: Annotated[Optional[str], typer.Option(
        "--completion-code", help="One completion code for everybody (default: a code per participant).")] = None,
    conditions: Annotated[Optional[str], typer.Option(
        "--conditions", help="Comma-separated condition labels; links then need ?condition=LABEL.")] = None,
    image_size: Annotated[int, typer.Option("--image-size", min=100, max=2000, help="Image size (px).")] = 400,
    cors_origin: Annotated[Optional[list[str]], typer.Option(
        "--cors-origin", help="Allow a page from this origin (e.g. https://lab.example.org) to call the API "
                              "(repeatable).")] = None,
    admin_token: Annotated[Optional[str], typer.Option(
        "--admin-token", envvar="IPE_ADMIN_TOKEN", help="Admin token to use (default: the database's, made at "
                                                       "creation).")] = None,
    signed_links: Annotated[bool, typer.Option(
        "--signed-links", help="Only ids from instructor-signed links (`ipe experiment links`) may start a "
                               "session, so nobody can take another's id.")] = False,
    session_rate: Annotated[Optional[str], typer.Option(
        "--session-rate", help="Most session starts per client address, as COUNT/UNIT (default 30/minute; "
                               "'off': no limit).")] = None,
    session_rate_total: Annotated[Optional[str], typer.Option(
        "--session-rate-total", help="Most session starts over all clients (default 300/minute).")] = None,
    answer_rate: Annotated[Optional[str], typer.Option(
        "--answer-rate", help="Most answers per client address (default 600/minute).")] = None,
    answer_rate_total: Annotated[Optional[str], typer.Option(
        "--answer-rate-total", help="Most answers over all clients (default 6000/minute).")] = None,
    no_early_stop: NoEarlyStopOption = False,
) -> None:
    """Serve the experiment; prints the participant URL and the admin token."""
    from ..webexperiment import ExperimentConfig, Store, build_materials, create_app, design_json, serve
    from ..webexperiment.materials import DEFAULT_CONSENT
    from ..scenefile import load_stimuli

    rates = _check_serve_options(db, admin_token, completion_code, cors_origin, {
        "--session-rate": session_rate, "--session-rate-total": session_rate_total, "--answer-rate": answer_rate,
        "--answer-rate-total": answer_rate_total})
    labels = tuple(c.strip() for c in conditions.split(",")) if conditions else ()
    cfg = ExperimentConfig(task=task, practice=practice, seed=seed, title=title,
                           consent=_read_text(consent, "--consent") or DEFAULT_CONSENT,
                           instructions=_read_text(instructions, "--instructions"), prompt=prompt or "",
                           completion_code=completion_code or "", conditions=labels, image_size=image_size,
                           early_stop=not no_early_stop)
    stim = load_stimuli(stimuli)
    prac = load_stimuli(practice_stimuli) if practice_stimuli is not None else None
    note(f"preparing {len(stim) + (len(prac) if prac else 0)} stimuli (noise-free rollouts, images)…")
    materials = build_materials(stim, cfg, practice_stimuli=prac)
    store = Store(db, design=design_json(materials), fingerprint=materials.fingerprint, admin_token=admin_token,
                  stimulus_set=materials.stimulus_set)
    app_ = create_app(materials, store, tuple(cors_origin or ()), rates=rates, signed_links=signed_links)
    if signed_links:
        note("signed links only: make them with `ipe experiment links --db " + str(db) + " --ids ...`")
    if host not in ("127.0.0.1", "localhost", "::1"):
        note(f"warning: listening on {host}: other machines can reach this server")
    serve(app_, host=host, port=port)


def _check_serve_options(db: Path, admin_token: str | None, completion_code: str | None,
                         cors_origin: list[str] | None, rate_options: dict[str, str | None]) -> dict[str, str | None]:
    """The options of ``serve`` that need more than their type; returns the rate limits."""
    from ..webexperiment.server import ADMIN_TOKEN_RE

    if db.exists() and db.is_dir():
        raise InputError(f"--db {db}: is a directory, expected a database file")
    if admin_token is not None and not ADMIN_TOKEN_RE.fullmatch(admin_token):
        raise InputError("--admin-token: 16-256 characters from letters, digits and _ - . ~ + / =")
    rates = _rates(rate_options)
    if completion_code is not None and not completion_code.strip():
        raise InputError("--completion-code: empty; leave the option out for a code per participant")
    for origin in cors_origin or ():
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?", origin.strip()):
            raise InputError(f"--cors-origin {origin!r}: expected an origin such as https://lab.example.org "
                             "(scheme and host, optional port, no path)")
    return rates


@experiment_app.command("export")
def export_cmd(
    db: Annotated[Path, typer.Argument(help="The experiment's SQLite database.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Response table (CSV) to write.")],
    phase: Annotated[str, typer.Option("--phase", help="test (default) or practice.")] = "test",
    materials: Annotated[Optional[Path], typer.Option(
        "--materials", help="Also write the stimulus images, conditions.csv and timeline_variables.json "
                            "(for PsychoPy/jsPsych) into this directory.")] = None,
) -> None:
    """Write the tidy response table (participant, stimulus_id, response, rt, trial_index, condition)."""
    from ..webexperiment import export_materials, export_responses

    check_out(out)
    if materials is not None:
        check_out_dir(materials, "--materials")
    check("--phase", phase, PHASES)
    if not db.exists():
        raise InputError(f"{db}: no such database")
    table = export_responses(db, out, phase=phase)
    note(f"wrote {len(table)} {phase} responses of {table['participant'].nunique()} participants to {out}")
    if materials is not None:
        cond = export_materials(db, materials)
        note(f"wrote {len(cond)} images, conditions.csv and timeline_variables.json to {materials}")


@experiment_app.command("links")
def links_cmd(
    db: Annotated[Path, typer.Option("--db", help="The experiment's database (made by `ipe experiment serve`).")],
    ids: Annotated[str, typer.Option("--ids", help="Participant ids: comma-separated ids and ranges, "
                                                   "e.g. 1-200 or alice,bob.")],
    url: Annotated[str, typer.Option("--url", help="The server's address as participants reach it.")]
    = "http://127.0.0.1:8000/",
    param: Annotated[str, typer.Option("--param", help="Query parameter of the id: id, PROLIFIC_PID or "
                                                       "SONA_ID.")] = "id",
    condition: Annotated[Optional[str], typer.Option("--condition", help="Add ?condition=LABEL.")] = None,
) -> None:
    """Print one signed participant link per id (for `serve --signed-links`): URL?id=ID&sig=SIGNATURE."""
    from urllib.parse import urlencode

    from ..webexperiment import open_store
    from ..webexperiment.materials import PARTICIPANT_RE

    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?(/[A-Za-z0-9._~\-/]*)?", url):
        raise InputError(f"--url {url!r}: expected an address such as https://lab.example.org/ (no query)")
    check("--param", param, LINK_PARAMS)
    if condition is not None and not PARTICIPANT_RE.fullmatch(condition):
        raise InputError(f"--condition {condition[:40]!r}: 1-64 letters, digits, _ . -")
    wanted = _id_list(ids)
    store = open_store(db)
    try:
        base = url if "/" in url.split("://", 1)[1] else url + "/"
        for pid in wanted:
            q = {param: pid, "sig": store.link_signature(pid)}
            if condition is not None:
                q["condition"] = condition
            print(f"{base}?{urlencode(q)}")
    finally:
        store.close()
    note(f"{len(wanted)} signed link(s); start the server with --signed-links to accept only these ids")
