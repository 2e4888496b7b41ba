"""Real browser test: Playwright drives Debian's chromium (headless) through a whole session.

The server runs as a child process (``ipe experiment serve``). The page is
walked like a participant would: the id comes from ``?PROLIFIC_PID=``,
consent, instructions, practice trials with their feedback animation (one
tower that stays up, one that falls), every test trial (answered with the
keys 1–7, as in jsPsych, and by clicking), the completion code and the end
page's instructions. No request of the page may fail (no 404). On the way the page is reloaded (it must
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
from ipe.webexperiment.client import ServerProcess
from ipe.webexperiment.export import load_experiment
from ipe.humans import load_responses, validate_responses
from ipe.scenefile import save_stimuli
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


def _press(page, key):
    """Answer with a key once the trial's buttons are there (they appear when the picture has loaded)."""
    page.wait_for_selector('#widget button[data-value="1"]:enabled', timeout=TIMEOUT_MS)
    page.keyboard.press(key)


def _visible(page, element_id):
    page.wait_for_selector(f"#{element_id}:not([hidden])", state="visible", timeout=TIMEOUT_MS)


def test_whole_session_with_reload_and_server_kill(browser, tmp_path):
    stim = tmp_path / "towers.json"
    # 2 practice + 4 test; balanced: 3 stand, 3 fall, and the first three stand
    save_stimuli(generate_towers(6, seed=21, n_blocks=3, balanced=True), stim)
    db = tmp_path / "lab.db"
    args = ["--practice", "2", "--seed", "9", "--title", "Tower lab"]
    server = ServerProcess(stim, db, extra=args)
    pid = "web01"
    _, materials = load_experiment(db)
    order = [materials.stimuli[i].id for i in materials.order(pid)]
    answers = {i: (i * 2) % 7 + 1 for i in range(4)}
    errors: list[str] = []
    failed: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        page.goto(f"{server.base}/?PROLIFIC_PID={pid}")
        _wait_text(page, "title", "Tower lab")
        _visible(page, "screen-consent")
        assert "consent" in page.inner_text("#consent-text").lower()
        page.click("#consent-agree")
        _visible(page, "screen-instructions")
        note = page.inner_text("#instructions-note")
        assert "2 practice trials and" in note and "then 4 trials." in note and "(s)" not in note
        assert page.inner_text("#save-status") == "", "nothing is saved before the first answer"
        page.click("#instructions-start")
        # Practice: answer with a key, watch the true outcome, continue. One tower stays up, one falls.
        assert sorted(materials.truths[:2]) == [1.0, 7.0]
        happened = []
        for i in range(2):
            _wait_text(page, "progress-text", f"Practice {i + 1} of 2")
            assert "1–7" in page.inner_text("#keys-hint")
            _press(page, "4")
            _visible(page, "animation")
            page.wait_for_selector("#feedback-continue:enabled", timeout=TIMEOUT_MS)
            text = page.inner_text("#feedback-text")
            assert text.startswith("Your answer: 4.") and "What happened:" in text
            truth = materials.truths[i]
            assert ("Nothing fell" in text) == (truth == 1.0)
            happened.append("It fell" in text)
            if i == 0:
                page.click("#feedback-continue")
            else:
                page.keyboard.press("Enter")
        assert sorted(happened) == [False, True], "practice shows a tower that stays up and one that falls"
        # First test trial, then a reload: the page resumes at the next trial.
        _wait_text(page, "progress-text", "Trial 1 of 4")
        assert page.get_attribute("#stimulus", "src") == f"/api/images/{materials.order(pid)[0]}.png"
        _press(page, "8")  # not on the scale: nothing happens
        _press(page, str(answers[0]))
        _wait_text(page, "progress-text", "Trial 2 of 4")
        _wait_text(page, "save-status", "All answers saved.")
        page.reload()
        _wait_text(page, "progress-text", "Trial 2 of 4")
        _wait_text(page, "save-status", "All answers saved.")  # saved before the reload: still says so
        # The server dies; the participant goes on; the answers wait in the page's outbox.
        server.kill()
        for i in (1, 2, 3):
            _wait_text(page, "progress-text", f"Trial {i + 1} of 4")
            if i == 2:
                page.click(f'#widget button[data-value="{answers[i]}"]')
            else:
                _press(page, str(answers[i]))
        _visible(page, "screen-saving")
        sync_api.expect(page.locator("#save-status")).to_contain_text("retrying", timeout=TIMEOUT_MS)
        con = sqlite3.connect(db)
        n_test = con.execute("SELECT COUNT(*) FROM responses WHERE phase = 'test'").fetchone()[0]
        con.close()
        assert n_test == 1, "only the answer given before the kill can be stored yet"
        server = ServerProcess(stim, db, port=server.port, extra=args)
        _visible(page, "screen-done")
        code = page.inner_text("#completion-code").strip()
        done = page.inner_text("#screen-done")
        assert "all your answers are saved" in done and "Copy this code" in done and "close this page" in done
        assert errors == []
        assert failed == [], f"failed requests: {failed}"
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
    assert df["stimulus_set"].tolist() == [materials.stimulus_set] * 4
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


def test_phone_layout_scale_on_one_line_centred(browser, tmp_path):
    """On a 390 px phone the 1–7 buttons stay on one line, inside the page, and the picture is centred."""
    stim = tmp_path / "towers.json"
    save_stimuli(generate_towers(3, seed=2, n_blocks=3), stim)
    db = tmp_path / "phone.db"
    server = ServerProcess(stim, db, extra=["--practice", "1"])
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{server.base}/?id=phone1")
        # The page names its icon; without one a browser asks for /favicon.ico and gets a 404 on first load
        # (headless chromium does not, so the icon is checked here).
        icon = page.get_attribute('link[rel="icon"]', "href")
        assert icon and page.request.get(server.base + icon).status == 200
        page.click("#consent-agree")
        sync_api.expect(page.locator("#instructions-note")).to_contain_text("1 practice trial and",
                                                                          timeout=TIMEOUT_MS)
        page.click("#instructions-start")
        _wait_text(page, "progress-text", "Practice 1 of 1")
        page.wait_for_selector('#widget button[data-value="7"]', timeout=TIMEOUT_MS)
        boxes = [page.locator(f'#widget button[data-value="{v}"]').bounding_box() for v in range(1, 8)]
        tops = {round(b["y"]) for b in boxes}
        assert len(tops) == 1, f"the 1-7 row wraps: button tops {sorted(tops)}"
        assert boxes[0]["x"] >= 0 and boxes[-1]["x"] + boxes[-1]["width"] <= 390
        assert all(b["width"] >= 30 for b in boxes), "buttons too small to tap"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
        stage = page.locator("#stage").bounding_box()
        assert abs(stage["x"] + stage["width"] / 2 - 195) <= 2, "the picture is not centred"
        row_mid = (boxes[0]["x"] + boxes[-1]["x"] + boxes[-1]["width"]) / 2
        assert abs(row_mid - 195) <= 2, "the scale is not centred"
    finally:
        page.close()
        server.kill()


def test_direction_task_answers_with_arrow_keys(browser, tmp_path):
    """The direction task: ← answers "left" (stored 1), → answers "right" (stored 0)."""
    stim = tmp_path / "towers.json"
    save_stimuli(generate_towers(3, seed=4, n_blocks=3), stim)
    db = tmp_path / "dir.db"
    server = ServerProcess(stim, db, task="direction", extra=["--practice", "1"])
    page = browser.new_page()
    try:
        page.goto(f"{server.base}/?id=arrows1")
        page.click("#consent-agree")
        page.click("#instructions-start")
        _wait_text(page, "progress-text", "Practice 1 of 1")
        page.wait_for_selector('#widget button[data-value="left"]:enabled', timeout=TIMEOUT_MS)
        assert "←" in page.inner_text("#keys-hint")
        page.keyboard.press("ArrowRight")
        page.wait_for_selector("#feedback-continue:enabled", timeout=TIMEOUT_MS)
        assert page.inner_text("#feedback-text").startswith("Your answer: right.")
        page.keyboard.press("Enter")
        for i, key in enumerate(("ArrowLeft", "ArrowRight")):
            _wait_text(page, "progress-text", f"Trial {i + 1} of 2")
            page.wait_for_selector('#widget button[data-value="left"]:enabled', timeout=TIMEOUT_MS)
            page.keyboard.press("7")  # not an answer for this task
            page.keyboard.press(key)
        _visible(page, "screen-done")
    finally:
        page.close()
        server.kill()
    out = tmp_path / "dir.csv"
    assert main(["experiment", "export", str(db), "--out", str(out)]) == 0
    assert load_responses(out)["response"].tolist() == [1.0, 0.0]
