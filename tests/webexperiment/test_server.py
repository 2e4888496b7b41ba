"""The browser experiment's server, in process (Starlette's TestClient over httpx).

Covers the participant protocol (session, resume, responses, idempotency,
completion), landing clicks mapped to scene x, the CLI's bad input, CORS, and
at least ten malformed or hostile requests that must get a 4xx and store
nothing. The store and the export: test_store.py, test_export.py; the fixtures
(towers, materials, an in-process server): conftest.py.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # Starlette >= 1.x asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from ipe.cli import main
from webexperiment_helpers import answer, session
from ipe.webexperiment import ExperimentConfig, Store, build_materials, create_app, design_json, response_table
from ipe.webexperiment.materials import materials_from_design
from ipe.webexperiment.server import MAX_BODY
from ipe.scene import Ball, Query, Scene, StaticBox, StaticPolygon, Stimulus
from ipe.scenefile import save_stimuli


# --------------------------------------------------------------------------- protocol


def test_session_orders_are_seeded_by_id_and_differ(server, materials):
    client, _ = server
    a = session(client, "alice")
    b = session(client, "bob")
    assert [t["stimulus_id"] for t in a["practice"]] == [s.id for s in materials.stimuli[:2]]
    ids_a = [t["stimulus_id"] for t in a["test"]]
    assert sorted(ids_a) == sorted(s.id for s in materials.stimuli[2:])
    assert ids_a == [materials.stimuli[i].id for i in materials.order("alice")]
    # Same id, same order (another build of the materials gives it too); other ids, other orders.
    assert materials.order("alice") == materials_from_design(design_json(materials)).order("alice")
    orders = {tuple(materials.order(f"p{k}")) for k in range(30)}
    assert len(orders) > 1
    assert a["token"] != b["token"] and a["answered"] == {"practice": [], "test": []}


def test_responses_store_once_resume_and_complete(server, materials):
    client, store = server
    s = session(client, "p1")
    assert client.post("/api/complete", json={"participant": "p1", "token": s["token"]}).status_code == 409
    r = client.post("/api/responses", json=answer(s, "practice", 0, 4))
    assert r.status_code == 200 and r.json()["status"] == "stored"
    # The same key again: acknowledged, stored once.
    r = client.post("/api/responses", json=answer(s, "practice", 0, 4))
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    # The same key for another answer, or another key for an answered trial: conflict, nothing stored.
    assert client.post("/api/responses", json=answer(s, "practice", 0, 5)).status_code == 409
    assert client.post("/api/responses", json=answer(s, "practice", 0, 4, key="another-key-123")).status_code == 409
    assert store.count() == 1
    # Reload: the session resumes with what was answered.
    again = client.post("/api/session", json={"participant": "p1", "token": s["token"]}).json()
    assert again["answered"] == {"practice": [0], "test": []} and again["test"] == s["test"]
    client.post("/api/responses", json=answer(s, "practice", 1, 7))
    for i in range(len(s["test"])):
        assert client.post("/api/responses", json=answer(s, "test", i, i % 7 + 1)).status_code == 200
    r = client.post("/api/complete", json={"participant": "p1", "token": s["token"]})
    assert r.status_code == 200
    code = r.json()["completion_code"]
    assert len(code) == 10 and code == store.completion_code("p1")
    assert code != store.completion_code("p2")
    again = client.post("/api/session", json={"participant": "p1", "token": s["token"]}).json()
    assert again["completed"] and again["completion_code"] == code
    table = response_table(store, materials)
    assert list(table.columns) == ["participant", "stimulus_id", "response", "rt", "trial_index", "condition",
                                   "stimulus_set"]
    assert table["trial_index"].tolist() == list(range(len(s["test"])))
    assert table["stimulus_id"].tolist() == [t["stimulus_id"] for t in s["test"]]
    assert table["response"].tolist() == [float(i % 7 + 1) for i in range(len(s["test"]))]


def test_feedback_only_for_practice_and_matches_noise_free_truth(server, materials):
    client, _ = server
    from ipe.montecarlo import run_sample
    from ipe.noise import NoiseParams

    fb = client.get("/api/feedback/0").json()
    stim = materials.stimuli[0]
    _, res = run_sample(stim, NoiseParams(), 0, 0, [stim.query], record_every=8)
    assert np.allclose(np.array(fb["frames"]), res.trajectory, atol=1e-5)
    assert fb["truth"] == (1.0 if stim.metadata["stable"] else 7.0) == materials.truths[0]
    assert fb["feedback"] and len(fb["bodies"]) == len(stim.scene.bodies)
    for n in (materials.n_practice, len(materials.stimuli) - 1):
        assert client.get(f"/api/feedback/{n}").status_code == 404
    png = client.get("/api/images/0.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_condition_from_link_is_stamped_on_responses(towers, tmp_path):
    m = build_materials(towers[:3], ExperimentConfig(task="probability", practice=1, conditions=("a", "b")))
    store = Store(tmp_path / "c.db", design=design_json(m), fingerprint=m.fingerprint)
    with TestClient(create_app(m, store)) as client:
        assert client.post("/api/session", json={"participant": "x"}).status_code == 422
        assert client.post("/api/session", json={"participant": "x", "condition": "zz"}).status_code == 422
        s = client.post("/api/session", json={"participant": "x", "condition": "b"}).json()
        assert client.post("/api/responses", json=answer(s, "test", 0, 37.5)).status_code == 200
        assert client.post("/api/responses", json=answer(s, "test", 1, 101)).status_code == 422
    t = response_table(store, m)
    assert t["condition"].tolist() == ["b"] and t["response"].tolist() == [37.5]


# --------------------------------------------------------------------------- tasks


def _ramp_ball(sid, x):
    ramp = StaticPolygon(id="ramp", vertices=((-1.0, 0.0), (0.0, 0.0), (-1.0, 0.6)))
    ground = StaticBox(id="ground", position=(0.0, -0.05), width=8.0, height=0.1)
    ball = Ball(id="ball", position=(x, -0.6 * x + 0.1 * 1.36 ** 0.5 + 0.005), radius=0.1)  # just above
    return Stimulus(id=sid, scene=Scene(bodies=(ball,), statics=(ramp, ground)), query=Query("distance"))


def test_landing_frame_holds_the_outcome_and_clicks_map_to_scene_x(tmp_path):
    stims = [_ramp_ball("r0", -0.8), _ramp_ball("r1", -0.5), _ramp_ball("r2", -0.3)]
    m = build_materials(stims, ExperimentConfig(task="landing", practice=1))
    for i, s in enumerate(m.stimuli):
        x0, x1, y0, y1 = m.frames[i]
        assert x0 < m.truths[i] < x1, "the ball's resting place must be inside the picture"
        assert math.isclose(x1 - x0, m.frames[0][1] - m.frames[0][0]), "one scale for every picture"
        assert m.truths[i] > 0, "the ball rolls off the ramp to the right"
    # The page maps a click at fraction f of the image width to x0 + f (x1 - x0); check the server takes it.
    store = Store(tmp_path / "l.db", design=design_json(m), fingerprint=m.fingerprint)
    with TestClient(create_app(m, store)) as client:
        s = session(client, "lander")
        x0, x1 = s["test"][0]["frame"][:2]
        assert client.post("/api/responses", json=answer(s, "test", 0, x0 + 0.25 * (x1 - x0))).status_code == 200
        assert client.post("/api/responses", json=answer(s, "test", 1, x1 + 0.01)).status_code == 422
        fb = client.get("/api/feedback/0").json()
        assert "ended up at x =" in fb["feedback"]
    t = response_table(store, m)
    assert t["response"].iloc[0] == pytest.approx(x0 + 0.25 * (x1 - x0))


# --------------------------------------------------------------------------- hostile input


def _count(store):
    return store.count()


HOSTILE = {
    "oversized body": lambda c, s: c.post("/api/responses", content=b'{"pad": "' + b"x" * (MAX_BODY + 10) + b'"}',
                                          headers={"content-type": "application/json"}),
    "not JSON": lambda c, s: c.post("/api/responses", content=b"{not json",
                                    headers={"content-type": "application/json"}),
    "wrong content type": lambda c, s: c.post("/api/responses", content=json.dumps(answer(s, "test", 0, 4)),
                                              headers={"content-type": "text/plain"}),
    "array body": lambda c, s: c.post("/api/responses", json=[answer(s, "test", 0, 4)]),
    "NaN response": lambda c, s: c.post("/api/responses", content=json.dumps(answer(s, "test", 0, 4)).replace(
        '"response": 4', '"response": NaN'), headers={"content-type": "application/json"}),
    "string response": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, "4")),
    "boolean response": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, True)),
    "out of range": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 8)),
    "fractional rating": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 2.5)),
    "unknown stimulus": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, stimulus_id="nope")),
    "practice stimulus as test": lambda c, s: c.post("/api/responses", json=answer(
        s, "test", 0, 4, stimulus_id=s["practice"][0]["stimulus_id"])),
    "negative trial index": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, trial_index=-1)),
    "huge trial index": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, trial_index=10 ** 12)),
    "negative rt": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, rt=-5)),
    "unknown field": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, admin=True)),
    "missing field": lambda c, s: c.post("/api/responses", json={
        k: v for k, v in answer(s, "test", 0, 4).items() if k != "trial_index"}),
    "bad key": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, key="a b<script>")),
    "bad phase": lambda c, s: c.post("/api/responses", json={**answer(s, "test", 0, 4), "phase": "admin"}),
    "hostile participant id": lambda c, s: c.post("/api/responses", json=answer(
        s, "test", 0, 4, participant="../../etc/passwd")),
    "another participant's id": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4,
                                                                                   participant="victim")),
    "no token": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, token="")),
    "wrong token": lambda c, s: c.post("/api/responses", json=answer(s, "test", 0, 4, token="guessed-token")),
    "reading another's session": lambda c, s: c.post("/api/session", json={"participant": "victim"}),
    "another's session with my token": lambda c, s: c.post("/api/session", json={"participant": "victim",
                                                                                 "token": s["token"]}),
    "completing another's session": lambda c, s: c.post("/api/complete", json={"participant": "victim",
                                                                               "token": s["token"]}),
    "admin without token": lambda c, s: c.get("/admin/responses.csv"),
    "admin with wrong token": lambda c, s: c.get("/admin/responses.csv", headers={"authorization": "Bearer nope"}),
    "admin status without token": lambda c, s: c.get("/admin/status"),
    "admin token as participant token": lambda c, s: c.get("/admin/participants.csv",
                                                           headers={"authorization": f"Bearer {s['token']}"}),
    "static path traversal": lambda c, s: c.get("/static/../store.py"),
    "static encoded traversal": lambda c, s: c.get("/static/%2e%2e/%2e%2e/pyproject.toml"),
    "static absolute path": lambda c, s: c.get("/static//etc/passwd"),
    "static python source": lambda c, s: c.get("/static/..%2fserver.py"),
    "image index traversal": lambda c, s: c.get("/api/images/..%2f..%2fstore.py"),
    "image out of range": lambda c, s: c.get("/api/images/99999.png"),
    "feedback for a test trial": lambda c, s: c.get(f"/api/feedback/{len(s['practice'])}"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_requests_get_4xx_and_store_nothing(case, server):
    client, store = server
    victim = session(client, "victim")
    client.post("/api/responses", json=answer(victim, "test", 0, 3, key="victim-key-0001"))
    me = session(client, "mallory")
    before = _count(store)
    r = HOSTILE[case](client, me)
    assert 400 <= r.status_code < 500, (case, r.status_code, r.text[:200])
    assert str(victim["token"]) not in r.text
    assert _count(store) == before
    rows = store.rows(None)
    assert [(x["participant"], x["response"]) for x in rows] == [("victim", 3.0)]
    if r.headers.get("content-type", "").startswith("application/json"):
        assert "error" in r.json()


def test_server_never_answers_with_response_values_to_participants(server):
    client, store = server
    v = session(client, "victim")
    client.post("/api/responses", json=answer(v, "test", 0, 6, key="victim-key-0002"))
    again = client.post("/api/session", json={"participant": "victim", "token": v["token"]}).json()
    assert "response" not in json.dumps(again["answered"])
    assert client.get("/api/responses").status_code == 405


def test_admin_routes_with_the_token(server, materials):
    client, store = server
    s = session(client, "p9")
    client.post("/api/responses", json=answer(s, "test", 0, 5))
    h = {"authorization": f"Bearer {store.admin_token}"}
    st = client.get("/admin/status", headers=h).json()
    assert st["responses"] == {"test": 1, "practice": 0} and st["participants"] == 1
    csv = client.get("/admin/responses.csv", headers=h).text
    assert csv.splitlines()[0] == "participant,stimulus_id,response,rt,trial_index,condition,stimulus_set"
    assert csv.splitlines()[1].startswith(f"p9,{s['test'][0]['stimulus_id']},5,812,0,")
    assert "p9" in client.get("/admin/participants.csv", headers=h).text


@pytest.mark.parametrize("argv,fragment", [
    (["experiment", "serve", "{stim}", "--task", "juggling", "--db", "{tmp}/x.db"], "--task 'juggling'"),
    (["experiment", "serve", "{stim}", "--task", "will-it-fall", "--db", "{tmp}", "--port", "0"], "is a directory"),
    (["experiment", "serve", "{stim}", "--task", "will-it-fall", "--db", "{tmp}/x.db", "--practice", "9"],
     "at least one must remain"),
    (["experiment", "serve", "{tmp}/missing.json", "--task", "will-it-fall", "--db", "{tmp}/x.db"], "no such file"),
    (["experiment", "serve", "{stim}", "--task", "will-it-fall", "--db", "{tmp}/x.db", "--conditions", "a,a"],
     "given twice"),
    (["experiment", "export", "{tmp}/none.db", "--out", "{tmp}/o.csv"], "no such database"),
    (["experiment", "export", "{stim}", "--out", "{tmp}/o.csv"], "not an experiment database"),
    (["experiment", "export", "{tmp}/none.db", "--out", "{tmp}/o.csv", "--phase", "all"], "--phase"),
])
def test_cli_bad_input(argv, fragment, towers, tmp_path, capsys):
    stim = tmp_path / "t.json"
    save_stimuli(towers[:3], stim)
    args = [a.format(stim=stim, tmp=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ipe: error:") and fragment in err[-1], err


def test_cors_only_for_the_named_origin(materials, tmp_path):
    store = Store(tmp_path / "cors.db", design=design_json(materials), fingerprint=materials.fingerprint)
    pre = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    with TestClient(create_app(materials, store, ("https://lab.example.org",))) as client:
        ok = client.options("/api/responses", headers={"origin": "https://lab.example.org", **pre})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://lab.example.org"
        bad = client.options("/api/responses", headers={"origin": "https://evil.example", **pre})
        assert "access-control-allow-origin" not in bad.headers
    with TestClient(create_app(materials, store)) as client:  # no --cors-origin: no CORS headers at all
        r = client.get("/api/config", headers={"origin": "https://lab.example.org"})
        assert "access-control-allow-origin" not in r.headers
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
    store.close()
