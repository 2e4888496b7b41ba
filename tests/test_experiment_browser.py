"""Real browser test: Playwright drives Debian's chromium (headless) through a whole session.

The server runs as a child process (``ipe experiment serve``). The page is
walked like a participant would: the id comes from ``?PROLIFIC_PID=``,
consent, instructions, practice trials with their feedback animation, every
test trial, the completion code. On the way the page is reloaded (it must
resume at the next trial) and the server is killed with SIGKILL (the page
keeps the answers given meanwhile in its outbox and retries until the
restarted server acknowledges them). The exported CSV must then hold exactly
the answers that were clicked, in the response schema ``ipe fit`` reads.

Skipped when ``chromium`` or the ``playwright`` package is missing
(``.ci/run`` installs chromium with apt-get; Playwright's own browser
download is not used).
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from ipe.cli import main
from ipe.experiment.client import ServerProcess
from ipe.experiment.export import load_experiment
from ipe.humans import load_responses, validate_responses
from ipe.scene import save_stimuli
from ipe.stimuli.towers import generate_towers

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield b
        b.close()


def _wait_text(page, element_id, text):
    # Locator assertions, not wait_for_function: the page's Content-Security-Policy forbids eval.
    sync_api.expect(page.locator(f"#{element_id}")).to_have_text(text, timeout=TIMEOUT_MS)


def _visible(page, element_id):
    page.wait_for_selector(f"#{element_id}:not([hidden])", state="visible", timeout=TIMEOUT_MS)


def test_whole_session_with_reload_and_server_kill(browser, tmp_path):
    stim = tmp_path / "towers.json"
    save_stimuli(generate_towers(6, seed=21, n_blocks=3), stim)  # 2 practice + 4 test
    db = tmp_path / "lab.db"
    args = ["--practice", "2", "--seed", "9", "--title", "Tower lab"]
    server = ServerProcess(stim, db, extra=args)
    pid = "web01"
    _, materials = load_experiment(db)
    order = [materials.stimuli[i].id for i in materials.order(pid)]
    answers = {i: (i * 2) % 7 + 1 for i in range(4)}
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.base}/?PROLIFIC_PID={pid}")
        _wait_text(page, "title", "Tower lab")
        _visible(page, "screen-consent")
        assert "consent" in page.inner_text("#consent-text").lower()
        page.click("#consent-agree")
        _visible(page, "screen-instructions")
        assert "2 practice" in page.inner_text("#instructions-note")
        page.click("#instructions-start")
        # Practice: answer, watch the true outcome, continue.
        for i in range(2):
            _wait_text(page, "progress-text", f"Practice {i + 1} of 2")
            page.click('#widget button[data-value="4"]')
            _visible(page, "animation")
            page.wait_for_selector("#feedback-continue:enabled", timeout=TIMEOUT_MS)
            text = page.inner_text("#feedback-text")
            assert "What happened:" in text and ("fell" in text or "stayed up" in text)
            truth = materials.truths[i]
            assert ("Nothing fell" in text) == (truth == 1.0)
            page.click("#feedback-continue")
        # First test trial, then a reload: the page resumes at the next trial.
        _wait_text(page, "progress-text", "Trial 1 of 4")
        assert page.get_attribute("#stimulus", "src") == f"/api/images/{materials.order(pid)[0]}.png"
        page.click(f'#widget button[data-value="{answers[0]}"]')
        _wait_text(page, "progress-text", "Trial 2 of 4")
        _wait_text(page, "save-status", "All answers saved.")
        page.reload()
        _wait_text(page, "progress-text", "Trial 2 of 4")
        # The server dies; the participant goes on; the answers wait in the page's outbox.
        server.kill()
        for i in (1, 2, 3):
            _wait_text(page, "progress-text", f"Trial {i + 1} of 4")
            page.click(f'#widget button[data-value="{answers[i]}"]')
        _visible(page, "screen-saving")
        sync_api.expect(page.locator("#save-status")).to_contain_text("retrying", timeout=TIMEOUT_MS)
        con = sqlite3.connect(db)
        n_test = con.execute("SELECT COUNT(*) FROM responses WHERE phase = 'test'").fetchone()[0]
        con.close()
        assert n_test == 1, "only the answer given before the kill can be stored yet"
        server = ServerProcess(stim, db, port=server.port, extra=args)
        _visible(page, "screen-done")
        code = page.inner_text("#completion-code").strip()
        assert errors == []
    finally:
        page.close()
        server.kill()
    store, _ = load_experiment(db)
    assert code == store.completion_code(pid) and store.participants()[0]["completion_code"] == code
    store.close()
    out = tmp_path / "responses.csv"
    assert main(["experiment", "export", str(db), "--out", str(out)]) == 0
    df = validate_responses(load_responses(out), stimuli=materials.test_set())
    assert df["participant"].tolist() == [pid] * 4
    assert df["trial_index"].tolist() == [0, 1, 2, 3]
    assert df["stimulus_id"].tolist() == order
    assert df["response"].tolist() == [float(answers[i]) for i in range(4)]
    assert (df["rt"] > 0).all()
    prac = tmp_path / "practice.csv"
    assert main(["experiment", "export", str(db), "--out", str(prac), "--phase", "practice"]) == 0
    p = load_responses(prac)
    assert p["response"].tolist() == [4.0, 4.0] and p["stimulus_id"].tolist() == [s.id for s in materials.stimuli[:2]]


def test_landing_clicks_map_back_to_scene_x(browser, tmp_path):
    """The click widget: a click at a known spot of the picture is stored as that scene x (one pixel's accuracy)."""
    from ipe.scene import Ball, Query, Scene, StaticBox, StaticPolygon, Stimulus

    def ramp_ball(sid, x):
        ramp = StaticPolygon(id="ramp", vertices=((-1.0, 0.0), (0.0, 0.0), (-1.0, 0.6)))
        ground = StaticBox(id="ground", position=(0.0, -0.05), width=8.0, height=0.1)
        ball = Ball(id="ball", position=(x, -0.6 * x + 0.1 * 1.36 ** 0.5 + 0.005), radius=0.1)  # just above
        return Stimulus(id=sid, scene=Scene(bodies=(ball,), statics=(ramp, ground)), query=Query("distance"))

    stim = tmp_path / "balls.json"
    save_stimuli([ramp_ball("r0", -0.8), ramp_ball("r1", -0.6), ramp_ball("r2", -0.4)], stim)
    db = tmp_path / "land.db"
    server = ServerProcess(stim, db, task="landing", extra=["--practice", "1", "--image-size", "300"])
    _, materials = load_experiment(db)
    fractions = [0.25, 0.8]
    page = browser.new_page()
    try:
        page.goto(f"{server.base}/?SONA_ID=lander7")
        page.click("#consent-agree")
        page.click("#instructions-start")
        _wait_text(page, "progress-text", "Practice 1 of 1")
        page.click("#stimulus", position={"x": 150, "y": 20})
        page.click("#submit")
        page.wait_for_selector("#feedback-continue:enabled", timeout=TIMEOUT_MS)
        assert "ended up at x =" in page.inner_text("#feedback-text")
        page.click("#feedback-continue")
        for i, f in enumerate(fractions):
            _wait_text(page, "progress-text", f"Trial {i + 1} of 2")
            box = page.locator("#stimulus").bounding_box()
            page.click("#stimulus", position={"x": f * box["width"], "y": box["height"] / 2})
            page.click("#submit")
        _visible(page, "screen-done")
    finally:
        page.close()
        server.kill()
    out = tmp_path / "landing.csv"
    assert main(["experiment", "export", str(db), "--out", str(out)]) == 0
    df = load_responses(out)
    order = materials.order("lander7")
    assert df["stimulus_id"].tolist() == [materials.stimuli[i].id for i in order]
    for (_, row), i, f in zip(df.iterrows(), order, fractions):
        x0, x1 = materials.frames[i][:2]
        assert abs(row["response"] - (x0 + f * (x1 - x0))) <= 1.5 * (x1 - x0) / 300
