"""A hostile participant against the experiment server (in process; issue 20's holes plus the usual attacks).

Honest participants answer while one attacker sends well over 150 hostile
requests: ids, keys and tokens with a trailing newline or other near-misses,
answers filed at another trial's index, answers after completion, numbers too
big to convert, non-ASCII digits in URLs, path traversal, oversize and
malformed bodies, wrong types, NaN, forged tokens and admin tokens. The
acceptance checks: no request gets a 5xx, every hostile one gets a 4xx with
a one-line JSON error, the database holds exactly the honest rows, and the
export of the attacked database holds exactly the honest answers.
A seeded mutation test adds 300 more requests (a forbidden character in a
text field, a bad number, a cut or padded body). Rate limits, signed links,
the ``links`` command, read-only export and full or unwritable disks have
their own tests below. The whole file runs in about 10 s on 2 busy cores.
"""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

with warnings.catch_warnings():  # Starlette >= 1.x asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from ipe.webexperiment import ExperimentConfig, Store, build_materials, create_app, design_json
from ipe.webexperiment import server as server_mod
from ipe.webexperiment.export import export_responses
from ipe.webexperiment.server import MAX_BODY
from ipe.stimuli.towers import generate_towers

JSON = {"content-type": "application/json"}
HUGE = 10 ** 400  # a 401-digit integer: float() of it raises OverflowError
LOOSE = {"sessions": None, "sessions_total": None, "answers": None, "answers_total": None}


@pytest.fixture(scope="module")
def materials():
    return build_materials(list(generate_towers(6, seed=11, n_blocks=4)),
                           ExperimentConfig(task="will-it-fall", practice=2, seed=3))


def _new(materials, tmp_path, monkeypatch=None, **kw):
    if monkeypatch is not None:  # the main suite is about validation, not rate limits: lift them
        monkeypatch.setattr(server_mod, "DEFAULT_RATES", LOOSE, raising=False)
    store = Store(tmp_path / "lab.db", design=design_json(materials), fingerprint=materials.fingerprint)
    client = TestClient(create_app(materials, store, **kw), raise_server_exceptions=False)
    return client, store


def _body(sess, phase, i, response=4, **over):
    t = sess[phase][i]
    body = {"key": f"{sess['participant']}-{phase}-{i}-honest", "participant": sess["participant"],
            "token": sess["token"], "phase": phase, "stimulus_id": t["stimulus_id"], "trial_index": i,
            "response": response, "rt": 900.0}
    body.update(over)
    return body


def _raw(client, path, text, headers=JSON):
    return client.post(path, content=text.encode("utf-8") if isinstance(text, str) else text, headers=headers)


def _is_one_line_json_error(r) -> bool:
    try:
        data = r.json()
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("error"), str) and "\n" not in data["error"] \
        and "\n" not in r.text


# Near-misses of a valid id: each must be refused, never stored under (or merged into) the real id.
BAD_IDS = ["alice\n", "alice\r\n", "alice\r", "\nalice", " alice", "alice ", "alice\t", "al ice", "alice\x00",
           "ａlice", "alicé", "", "a" * 65, "../alice", "alice/", "alice;", "alice\u2028", "alice\u00a0"]
BAD_TYPES = [1, 1.5, True, None, [], {}, ["alice"], {"$ne": ""}]
BAD_KEYS = ["short", "k" * 129, "honest-key-0001\n", "honest key 0001", "honest/key/0001", "honest-key-0001\x00",
            "ключ-ключ-ключ", 12345678, None, True]
BAD_TOKENS = ["", "x", "guess-guess-guess-guess", None, 123, [], "TOKEN\n"]
BAD_INDICES = [-1, 4, 5, 10 ** 12, HUGE, -HUGE, 1.0, 0.5, "0", True, None, [0]]
BAD_RESPONSES = [HUGE, -HUGE, 2 ** 53 + 1, 0, 8, 3.5, -1, "5", "five", True, None, [], {}, 1e308]
BAD_RTS = [HUGE, -HUGE, -1, 86_400_001, 1e300, "800", True, [], {}]
BAD_PHASES = ["Test", "test\n", "TEST", "admin", "", 1, None, ["test"]]


def _attacks(client, carol, alice, dave):
    """(label, response) for every hostile request; ``carol`` is in progress, ``alice`` has completed,
    ``dave`` has completed without doing the practice trials."""
    out = []

    def send(label, r):
        out.append((label, r))

    # --- misfiled: a real stimulus of this participant at another trial's index (issue 20, item 2)
    for i in range(3):
        for j in range(3):
            if i != j:
                send(f"test stimulus {i} at index {j}", client.post("/api/responses", json=_body(
                    carol, "test", i, trial_index=j, key=f"misfiled-{i}-{j}-x")))
    send("practice stimulus 0 at practice index 1", client.post("/api/responses", json=_body(
        carol, "practice", 0, trial_index=1, key="misfiled-practice-x")))
    send("practice stimulus as a test answer", client.post("/api/responses", json=_body(
        carol, "test", 1, stimulus_id=carol["practice"][1]["stimulus_id"], key="misfiled-phase-x")))
    # --- after completion: nothing new, practice included (item 3)
    for phase, i in (("practice", 0), ("practice", 1), ("test", 0), ("test", 2)):
        send(f"after completion: {phase} {i}", client.post("/api/responses", json=_body(
            alice, phase, i, response=1, key=f"late-{phase}-{i}-xx")))
    for i in (0, 1):
        send(f"after completion without practice: practice {i}", client.post("/api/responses", json=_body(
            dave, "practice", i, response=1, key=f"late-dave-{i}-xx")))
    # --- ids: near-misses of the real ids, and wrong types
    for pid in BAD_IDS:
        send(f"session id {pid!r}", client.post("/api/session", json={"participant": pid}))
        send(f"answer under id {pid!r}", client.post("/api/responses", json=_body(
            carol, "test", 1, participant=pid.replace("alice", "carol"), key=f"bad-id-{len(out):04d}")))
    for v in BAD_TYPES:
        send(f"session id of type {type(v).__name__}", client.post("/api/session", json={"participant": v}))
        if v is not None:  # no condition is fine: this experiment has none
            send(f"condition {v!r}", client.post("/api/session", json={"participant": "newbie", "condition": v}))
    send("session token with newline", client.post("/api/session", json={"participant": "carol",
                                                                         "token": carol["token"] + "\n"}))
    send("session of a taken id", client.post("/api/session", json={"participant": "alice"}))
    send("session of a taken id with another's token", client.post("/api/session", json={
        "participant": "alice", "token": carol["token"]}))
    # --- answers: every field replaced by a bad value, one at a time
    for k in BAD_KEYS:
        send(f"key {k!r}", client.post("/api/responses", json=_body(carol, "test", 1, key=k)))
    for t in BAD_TOKENS + [alice["token"], carol["token"] + "\n", " " + carol["token"]]:
        send(f"token {t!r}", client.post("/api/responses", json=_body(carol, "test", 1, token=t,
                                                                       key=f"bad-token-{len(out):04d}")))
    for ti in BAD_INDICES:
        send(f"trial_index {str(ti)[:20]}", client.post("/api/responses", json=_body(
            carol, "test", 1, trial_index=ti, key=f"bad-index-{len(out):04d}")))
    for v in BAD_RESPONSES:
        send(f"response {str(v)[:20]}", client.post("/api/responses", json=_body(
            carol, "test", 1, response=v, key=f"bad-resp-{len(out):04d}")))
    for v in BAD_RTS:
        send(f"rt {str(v)[:20]}", client.post("/api/responses", json=_body(carol, "test", 1, rt=v,
                                                                          key=f"bad-rt-{len(out):04d}")))
    for v in BAD_PHASES:
        send(f"phase {v!r}", client.post("/api/responses", json={
            **_body(carol, "test", 1, key=f"bad-phase-{len(out):04d}"), "phase": v}))
    for sid in ["nope", carol["test"][1]["stimulus_id"] + "\n", " " + carol["test"][1]["stimulus_id"],
                carol["practice"][0]["stimulus_id"], "x" * 5000, 7, None]:
        send(f"stimulus_id {str(sid)[:20]!r}", client.post("/api/responses", json=_body(
            carol, "test", 1, stimulus_id=sid, key=f"bad-sid-{len(out):04d}")))
    # --- one answer, another participant's token / id
    send("carol's answer with alice's token", client.post("/api/responses", json=_body(
        carol, "test", 1, token=alice["token"], key="swap-token-x")))
    send("alice's id with carol's token", client.post("/api/responses", json=_body(
        carol, "test", 1, participant="alice", key="swap-id-xx")))
    send("complete with a wrong token", client.post("/api/complete", json={"participant": "carol",
                                                                           "token": alice["token"]}))
    send("complete with a newline id", client.post("/api/complete", json={"participant": "carol\n",
                                                                          "token": carol["token"]}))
    send("complete too early", client.post("/api/complete", json={"participant": "carol",
                                                                  "token": carol["token"]}))
    send("complete with extra field", client.post("/api/complete", json={"participant": "carol",
                                                                         "token": carol["token"], "force": 1}))
    # --- bodies
    good = json.dumps(_body(carol, "test", 1, key="body-attack-x"))
    send("oversize body", _raw(client, "/api/responses", '{"pad": "' + "x" * (MAX_BODY + 1) + '"}'))
    send("oversize declared length", client.post("/api/responses", content=b"{}", headers={
        **JSON, "content-length": str(10 ** 30)}))
    send("not JSON", _raw(client, "/api/responses", "{not json"))
    send("empty body", _raw(client, "/api/responses", ""))
    send("invalid UTF-8", _raw(client, "/api/responses", b'{"key": "\xff\xfe"}'))
    send("JSON array", _raw(client, "/api/responses", "[" + good + "]"))
    send("JSON string", _raw(client, "/api/responses", '"hello"'))
    send("JSON null", _raw(client, "/api/responses", "null"))
    send("deep nesting", _raw(client, "/api/responses", "[" * 4000 + "]" * 4000))
    send("NaN literal", _raw(client, "/api/responses", good.replace('"response": 4', '"response": NaN')))
    send("Infinity literal", _raw(client, "/api/responses", good.replace('"rt": 900.0', '"rt": Infinity')))
    send("1e400", _raw(client, "/api/responses", good.replace('"response": 4', '"response": 1e400')))
    send("5000-digit integer", _raw(client, "/api/responses", good.replace('"response": 4',
                                                                           '"response": ' + "9" * 5000)))
    send("text/plain", _raw(client, "/api/responses", good, headers={"content-type": "text/plain"}))
    send("no content type", client.post("/api/responses", content=good.encode()))
    send("form body", client.post("/api/responses", data={"participant": "carol"}))
    send("unknown field", client.post("/api/responses", json={**json.loads(good), "admin": True}))
    send("missing field", client.post("/api/responses", json={k: v for k, v in json.loads(good).items()
                                                               if k != "token"}))
    send("unknown session field", client.post("/api/session", json={"participant": "newbie", "role": "admin"}))
    # --- URLs: non-ASCII digits (item 4), traversal, unknown routes and methods
    for path in ["/api/images/%C2%B2.png", "/api/images/%E2%91%A0.png", "/api/images/%D9%A1.png",
                 "/api/feedback/%E2%91%A0", "/api/feedback/%C2%B2", "/api/feedback/%EF%BC%91",
                 "/api/images/-1.png", "/api/images/99.png", "/api/images/1e3.png", "/api/images/0.PNG",
                 "/api/images/0.png%00", "/api/images/1234567.png", "/api/images/%2e%2e%2fstore.py",
                 "/api/feedback/2", "/api/feedback/5", "/api/feedback/-0", "/api/feedback/0x1",
                 "/static/../store.py", "/static/%2e%2e/store.py", "/static/..%2fserver.py",
                 "/static//etc/passwd", "/static/app.js%0a", "/static/app.py", "/api/nope", "/admin/nope",
                 "/api/responses", "/api/session"]:
        send(f"GET {path}", client.get(path))
    for method, path in [("PUT", "/api/session"), ("DELETE", "/api/responses"), ("PATCH", "/api/complete"),
                         ("POST", "/api/config"), ("POST", "/admin/status")]:
        send(f"{method} {path}", client.request(method, path, json={}))
    # --- admin
    for auth in [None, "Bearer", "Bearer ", "Bearer nope", "Basic YWRtaW46YWRtaW4=", f"Bearer {carol['token']}",
                 "Bearer " + "x" * 300, "Token abc"]:
        headers = {} if auth is None else {"authorization": auth}
        for path in ("/admin/status", "/admin/responses.csv", "/admin/participants.csv"):
            send(f"admin {path} with {str(auth)[:20]!r}", client.get(path, headers=headers))
    return out


def test_hostile_requests_all_get_a_4xx_and_the_export_holds_exactly_the_honest_answers(materials, tmp_path,
                                                                                       monkeypatch):
    client, store = _new(materials, tmp_path, monkeypatch)
    honest = {}  # key -> (participant, phase, stimulus_id, response, trial_index)

    def answer(sess, phase, i, response):
        body = _body(sess, phase, i, response)
        r = client.post("/api/responses", json=body)
        assert r.status_code == 200, r.text
        honest[body["key"]] = (sess["participant"], phase, body["stimulus_id"], float(response), i)

    alice = client.post("/api/session", json={"participant": "alice"}).json()
    for i in range(2):
        answer(alice, "practice", i, 4)
    for i in range(len(alice["test"])):
        answer(alice, "test", i, i + 2)
    assert client.post("/api/complete", json={"participant": "alice", "token": alice["token"]}).status_code == 200
    dave = client.post("/api/session", json={"participant": "dave"}).json()
    for i in range(len(dave["test"])):
        answer(dave, "test", i, 1)
    assert client.post("/api/complete", json={"participant": "dave", "token": dave["token"]}).status_code == 200
    carol = client.post("/api/session", json={"participant": "carol"}).json()
    answer(carol, "practice", 0, 5)
    answer(carol, "test", 0, 6)

    results = _attacks(client, carol, alice, dave)
    assert len(results) >= 150, len(results)
    bad = [f"{label}: {r.status_code} {r.text[:80]}" for label, r in results
           if not 400 <= r.status_code < 500 or not _is_one_line_json_error(r)]
    assert not bad, f"{len(bad)} of {len(results)} hostile requests not refused with a 4xx JSON line:\n" + \
        "\n".join(bad)

    # Carol goes on as if nothing happened: her real trials 1 and 2 are not blocked, and she completes.
    answer(carol, "practice", 1, 3)
    for i in range(1, len(carol["test"])):
        answer(carol, "test", i, 7 - i)
    r = client.post("/api/complete", json={"participant": "carol", "token": carol["token"]})
    assert r.status_code == 200, r.text
    # A page's retry of an answer it already sent is still acknowledged after completion; nothing new is stored.
    r = client.post("/api/responses", json=_body(carol, "test", 2, 5))
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    late = client.post("/api/responses", json=_body(carol, "practice", 1, 4, key="carol-late-practice"))
    assert late.status_code == 409

    rows = {r["key"]: (r["participant"], r["phase"], r["stimulus_id"], r["response"], r["trial_index"])
            for r in store.rows(None)}
    assert rows == honest, "rows stored that should not be (or honest ones missing)"
    assert [p["participant"] for p in store.participants()] == ["alice", "carol", "dave"]
    client.close()
    store.close()

    out = tmp_path / "export.csv"
    export_responses(tmp_path / "lab.db", out)
    table = pd.read_csv(out, dtype={"participant": str, "stimulus_id": str})
    got = sorted(zip(table["participant"], table["stimulus_id"], table["response"], table["trial_index"]))
    want = sorted((p, sid, resp, ti) for p, ph, sid, resp, ti in honest.values() if ph == "test")
    assert got == want


def test_rate_limits_per_client_and_overall(materials, tmp_path):
    client, store = _new(materials, tmp_path, rates={"sessions": "5/minute", "sessions_total": "8/minute"})
    codes = [client.post("/api/session", json={"participant": f"p{i}"}).status_code for i in range(7)]
    assert codes == [200] * 5 + [429] * 2
    r = client.post("/api/session", json={"participant": "p99"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and _is_one_line_json_error(r)
    # Another address has its own allowance, until the overall limit (8) is reached.
    other = TestClient(client.app, client=("10.0.0.2", 4000), raise_server_exceptions=False)
    assert [other.post("/api/session", json={"participant": f"q{i}"}).status_code for i in range(4)] == \
        [200, 200, 200, 429]
    assert len(store.participants()) == 8
    third = TestClient(client.app, client=("10.0.0.3", 4000), raise_server_exceptions=False)
    assert third.post("/api/session", json={"participant": "r0"}).status_code == 429  # the overall limit
    assert len(store.participants()) == 8
    third.close()
    client.close()
    other.close()
    store.close()


def test_session_squatting_is_bounded_by_the_rate_limit(materials, tmp_path):
    """Issue 20, item 5: ids 1..200 claimed in 2.4 s. With the default limits one address gets 30 a minute."""
    client, store = _new(materials, tmp_path)
    codes = [client.post("/api/session", json={"participant": str(i)}).status_code for i in range(1, 201)]
    assert codes.count(200) == 30 and codes.count(429) == 170
    assert len(store.participants()) == 30
    client.close()
    store.close()


def test_answers_are_rate_limited(materials, tmp_path):
    client, store = _new(materials, tmp_path, rates={"answers": "2/minute"})
    s = client.post("/api/session", json={"participant": "fast"}).json()
    codes = [client.post("/api/responses", json=_body(s, "test", i)).status_code for i in range(3)]
    assert codes == [200, 200, 429] and store.count() == 2
    client.close()
    store.close()


def test_signed_links(materials, tmp_path):
    client, store = _new(materials, tmp_path, signed_links=True)
    sig = store.link_signature("57")
    assert len(sig) == 22 and sig != store.link_signature("58")
    assert client.post("/api/session", json={"participant": "57"}).status_code == 403
    assert client.post("/api/session", json={"participant": "57", "sig": store.link_signature("58")}).status_code \
        == 403
    assert client.post("/api/session", json={"participant": "57", "sig": sig + "\n"}).status_code == 422
    assert client.post("/api/session", json={"participant": "57\n", "sig": sig}).status_code == 422
    assert len(store.participants()) == 0
    assert client.post("/api/session", json={"participant": "57", "sig": sig}).status_code == 200
    # The page posts only the id: the link's signature comes back as a cookie set by GET /?id=..&sig=..
    for param in ("id", "PROLIFIC_PID", "SONA_ID"):
        pid = f"s-{param}"
        page = TestClient(client.app, raise_server_exceptions=False)
        assert page.post("/api/session", json={"participant": pid}).status_code == 403
        assert page.get("/", params={param: pid, "sig": store.link_signature(pid)}).status_code == 200
        r = page.post("/api/session", json={"participant": pid})
        assert r.status_code == 200, r.text
        assert page.post("/api/session", json={"participant": "other"}).status_code == 403  # cookie is for pid only
        page.close()
    assert sorted(p["participant"] for p in store.participants()) == ["57", "s-PROLIFIC_PID", "s-SONA_ID", "s-id"]
    client.close()
    store.close()


def test_export_of_an_old_database_never_merges_a_near_miss_id(materials, tmp_path):
    """A database written by an older server may hold "alice\n": its rows are left out with a warning, never
    stripped into alice's."""
    import sqlite3

    client, store = _new(materials, tmp_path)
    alice = client.post("/api/session", json={"participant": "alice"}).json()
    for i in range(len(alice["test"])):
        assert client.post("/api/responses", json=_body(alice, "test", i, 2)).status_code == 200
    client.close()
    store.close()
    con = sqlite3.connect(tmp_path / "lab.db")
    con.execute("INSERT INTO participants(participant, token_hash, condition, created) VALUES (?, 'x', NULL, 0)",
                ("alice\n",))
    for i, t in enumerate(alice["test"]):
        con.execute("INSERT INTO responses(key, participant, phase, stimulus_id, response, rt, trial_index, "
                    "condition, received) VALUES (?, ?, 'test', ?, 7, 1, ?, NULL, 0)",
                    (f"old-{i}-xxxxxx", "alice\n", t["stimulus_id"], i))
    con.commit()
    con.close()
    with pytest.warns(UserWarning, match="left out 4 test response"):
        table = export_responses(tmp_path / "lab.db", tmp_path / "out.csv")
    assert table["participant"].tolist() == ["alice"] * 4 and (table["response"] == 2).all()


# --------------------------------------------------------------------------- the command line and the files


def test_links_prints_signed_urls_the_server_accepts(materials, tmp_path, capsys):
    from ipe.cli import main

    client, store = _new(materials, tmp_path, signed_links=True)
    capsys.readouterr()
    assert main(["experiment", "links", "--db", str(tmp_path / "lab.db"), "--ids", "1-3,alice",
                 "--url", "https://lab.example.org/study/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("https://lab.example.org/study/?id=1&sig=")
    for pid, line in zip(["1", "2", "3", "alice"], lines):
        sig = line.rsplit("sig=", 1)[1]
        assert sig == store.link_signature(pid)
        assert client.post("/api/session", json={"participant": pid, "sig": sig}).status_code == 200
    for bad in ["1-3\n", "3-1", "al ice", "1-200000"]:
        assert main(["experiment", "links", "--db", str(tmp_path / "lab.db"), "--ids", bad]) == 2
    assert main(["experiment", "links", "--db", str(tmp_path / "lab.db"), "--ids", "1", "--url", "x"]) == 2
    client.close()
    store.close()


def test_export_reads_while_another_process_holds_the_write_lock(materials, tmp_path):
    """``export`` opens the database read-only (SQLite mode=ro): it needs no write lock, so it runs while the
    server is mid-commit (a read-write open would wait for the lock, 30 s, and then fail)."""
    import sqlite3
    import time

    client, store = _new(materials, tmp_path)
    s = client.post("/api/session", json={"participant": "p1"}).json()
    assert client.post("/api/responses", json=_body(s, "test", 0)).status_code == 200
    client.close()
    store.close()
    writer = sqlite3.connect(tmp_path / "lab.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE meta SET value = value WHERE key = 'created'")
    try:
        t0 = time.perf_counter()
        table = export_responses(tmp_path / "lab.db", tmp_path / "out.csv")
        assert time.perf_counter() - t0 < 10
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert table["participant"].tolist() == ["p1"]


_FULL_DISK = r"""
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from ipe.errors import InputError
from ipe.webexperiment.store import Store
db = Path(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))  # "the disk is full" after 2 KiB
try:
    Store(db, design="x" * 20000, fingerprint="f")
except InputError as exc:
    print("REFUSED", exc)
"""


def test_a_full_disk_at_start_is_one_line_and_leaves_nothing(tmp_path):
    import subprocess
    import sys

    d = tmp_path / "lab"
    d.mkdir()
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(d / "x.db")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("REFUSED --db ") and proc.stdout.count("\n") == 1, proc.stdout
    assert "not an experiment database" not in proc.stdout
    assert list(d.iterdir()) == [], "nothing may be left behind"


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_folder_at_start_is_one_line_and_leaves_nothing(tmp_path):
    from ipe.errors import InputError

    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        with pytest.raises(InputError, match="not writable"):
            Store(d / "x.db", design="{}", fingerprint="f")
        assert list(d.iterdir()) == []
    finally:
        d.chmod(0o755)


_UNWRITABLE = r"""
import json, resource, signal, sys, warnings
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
warnings.simplefilter("ignore")
from pathlib import Path
from starlette.testclient import TestClient
from ipe.webexperiment import ExperimentConfig, Store, build_materials, create_app, design_json
from ipe.stimuli.towers import generate_towers
m = build_materials(list(generate_towers(4, seed=1, n_blocks=3)), ExperimentConfig(task="will-it-fall", practice=0))
db = Path(sys.argv[1])
store = Store(db, design=design_json(m), fingerprint=m.fingerprint)
client = TestClient(create_app(m, store, rates={"sessions": None, "sessions_total": None}),
                    raise_server_exceptions=False)
size = max(p.stat().st_size for p in db.parent.iterdir())
resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))  # no file may grow any more
codes = [client.post("/api/session", json={"participant": f"p{i}"}) for i in range(40)]
statuses = sorted({r.status_code for r in codes})
bad = [r for r in codes if r.status_code == 503]
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # space again
after = client.post("/api/session", json={"participant": "later"}).status_code
print(json.dumps({"statuses": statuses, "error": bad[0].json()["error"] if bad else None, "after": after,
                  "stored": [p["participant"] for p in store.participants()],
                  "ok": [f"p{i}" for i, r in enumerate(codes) if r.status_code == 200]}))
"""


def test_the_server_survives_its_disk_filling_up(tmp_path):
    """Writes that fail (full disk, file no longer writable) get a 503 with one JSON line and store nothing;
    the server goes on, and takes answers again once it can write."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _UNWRITABLE, str(tmp_path / "lab.db")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 503 in res["statuses"] and all(s in (200, 503) for s in res["statuses"]), res
    assert "cannot store" in res["error"] and "\n" not in res["error"]
    assert res["after"] == 200
    assert sorted(res["stored"]) == sorted(res["ok"] + ["later"]), "stored exactly what was acknowledged"


_FORBIDDEN = ["\n", "\r", "\t", " ", "\x00", "\x7f", "/", "\\", "%", "'", '"', "<", "é", "ß", "²", "①", "\u2028",
              "\ufeff", "\U0001f600", "İ"]


def test_seeded_mutations_of_an_honest_answer_are_all_refused(materials, tmp_path, monkeypatch):
    """300 more requests, deterministic: one field of an honest answer gets a forbidden character inserted
    (text fields), a bad value (numbers), or the body is cut or padded with junk. All 4xx, nothing stored."""
    import random

    client, store = _new(materials, tmp_path, monkeypatch)
    sess = client.post("/api/session", json={"participant": "carol"}).json()
    rng = random.Random(20)
    good = _body(sess, "test", 1)
    codes = []
    for n in range(300):
        body = dict(good, key=f"fuzz-{n:04d}-key")
        kind = rng.choice(["text", "text", "number", "raw"])
        if kind == "text":
            field = rng.choice(["key", "participant", "token", "stimulus_id", "phase"])
            v = body[field]
            i = rng.randrange(len(v) + 1)
            body[field] = v[:i] + rng.choice(_FORBIDDEN) + v[i:]
            r = client.post("/api/responses", json=body)
        elif kind == "number":
            field = rng.choice(["response", "rt", "trial_index"])
            body[field] = rng.choice([HUGE, -HUGE, -1, 1e308, -1e308, 0.5, "1", [1], {"$gt": 0}, True, 10 ** 20])
            if field == "response" and body[field] in (-1, 0.5) or field == "rt" and body[field] == 0.5:
                body[field] = HUGE  # -1 rt and 0.5 ms are fine values; keep every mutation invalid
            r = client.post("/api/responses", json=body)
        else:
            text = json.dumps(body)
            cut = rng.randrange(1, len(text) - 1)
            r = _raw(client, "/api/responses", rng.choice([text[:cut], text[:cut] + "\x00" + text[cut:],
                                                           text + "}" * rng.randrange(1, 5), "{" * cut]))
        codes.append((kind, r.status_code, r.text[:80]))
    bad = [c for c in codes if not 400 <= c[1] < 500]
    assert not bad, bad[:10]
    assert store.count() == 0
    assert client.post("/api/responses", json=good).status_code == 200  # the honest answer still goes in
    client.close()
    store.close()
