"""Helpers for the browser experiment's tests: start a participant's session, build one answer's body."""

from __future__ import annotations


def session(client, pid="p1"):
    r = client.post("/api/session", json={"participant": pid})
    assert r.status_code == 200, r.text
    return r.json()


def answer(sess, phase, i, response, key=None, **over):
    t = sess[phase][i]
    body = {"key": key or f"{sess['participant']}-{phase}-{i}-abcdef", "participant": sess["participant"],
            "token": sess["token"], "phase": phase, "stimulus_id": t["stimulus_id"], "trial_index": i,
            "response": response, "rt": 812.0}
    body.update(over)
    return body
