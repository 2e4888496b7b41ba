// The ipe browser experiment: consent, instructions, practice with feedback, test trials, completion code.
// Every answer goes into an outbox kept in localStorage and is posted with its own idempotency key until the
// server acknowledges it, so a reload, a dropped connection or a restarted server loses nothing.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const PID_RE = /^[A-Za-z0-9_.\-]{1,64}$/;
  const state = { cfg: null, pid: null, token: null, outbox: [], practice: [], test: [], done: new Set(),
                  trials: [], pos: 0, sending: false, shownAt: 0, saved: 0, keyHandler: null };

  // ------------------------------------------------------------------ helpers

  function show(name) {
    for (const s of document.querySelectorAll(".screen")) s.hidden = s.id !== "screen-" + name;
  }

  function fail(msg) {
    $("error-text").textContent = msg;
    $("progress").hidden = true;
    show("error");
  }

  function paragraphs(el, text) {
    el.textContent = "";
    for (const part of String(text).split(/\n\s*\n/)) {
      const p = document.createElement("p");
      p.textContent = part.trim();
      el.appendChild(p);
    }
  }

  // "1 practice trial", "2 practice trials"
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function api(method, url, body) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 10000);
    try {
      const res = await fetch(url, {
        method, signal: ctrl.signal, cache: "no-store",
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      let data = null;
      try { data = await res.json(); } catch (e) { data = null; }
      return { status: res.status, data };
    } finally {
      clearTimeout(timer);
    }
  }

  // Retries network failures and 5xx until an answer comes (for requests that must get through).
  async function apiRetry(method, url, body) {
    let delay = 250;
    for (;;) {
      try {
        const r = await api(method, url, body);
        if (r.status < 500) return r;
      } catch (e) { /* offline or server down: retry */ }
      setStatus("Connection problem, retrying…");
      await sleep(delay);
      delay = Math.min(delay * 2, 4000);
    }
  }

  function randomKey() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // ------------------------------------------------------------------ persistence

  const storeKey = () => "ipe-experiment:" + location.pathname + ":" + state.pid;

  function save() {
    try {
      localStorage.setItem(storeKey(), JSON.stringify({ token: state.token, outbox: state.outbox }));
    } catch (e) { /* storage full or disabled: the outbox still lives in memory */ }
  }

  function load() {
    try {
      const d = JSON.parse(localStorage.getItem(storeKey()) || "null");
      if (d && typeof d === "object") {
        state.token = typeof d.token === "string" ? d.token : null;
        state.outbox = Array.isArray(d.outbox) ? d.outbox : [];
      }
    } catch (e) { state.outbox = []; }
  }

  // ------------------------------------------------------------------ sending

  function setStatus(text) { $("save-status").textContent = text; }

  // "All answers saved." only once the server has acknowledged an answer (this visit or an earlier one).
  function updateStatus() {
    if (state.outbox.length) setStatus("Saving " + plural(state.outbox.length, "answer") + "…");
    else setStatus(state.saved ? "All answers saved." : "");
  }

  async function flush() {
    if (state.sending) return;
    state.sending = true;
    let delay = 250;
    try {
      while (state.outbox.length) {
        const item = state.outbox[0];
        let r = null;
        try { r = await api("POST", "/api/responses", item); } catch (e) { r = null; }
        if (r && (r.status === 200 || r.status === 409)) {
          // 200: stored now or before (same key); 409: this trial was already stored under another key.
          state.outbox.shift();
          state.saved += 1;
          save();
          delay = 250;
          updateStatus();
          continue;
        }
        if (r && r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
          console.error("answer refused", r.status, r.data);
          state.outbox.shift();
          save();
          continue;
        }
        setStatus("Connection problem, retrying… (" + plural(state.outbox.length, "answer") + " waiting)");
        await sleep(delay);
        delay = Math.min(delay * 2, 4000);
      }
    } finally {
      state.sending = false;
    }
    updateStatus();
  }

  function record(trial, value) {
    const item = {
      key: state.pid + "-" + trial.phase + "-" + trial.trial_index + "-" + randomKey(),
      participant: state.pid, token: state.token, phase: trial.phase, stimulus_id: trial.stimulus_id,
      trial_index: trial.trial_index, response: value, rt: Math.round(performance.now() - state.shownAt),
    };
    state.outbox.push(item);
    state.done.add(trial.phase + ":" + trial.trial_index);
    save();
    updateStatus();
    flush();
  }

  // ------------------------------------------------------------------ trials

  function progress() {
    const t = state.trials[state.pos];
    $("progress").hidden = false;
    const nTest = state.test.length;
    if (!t) {
      $("progress-text").textContent = "Finished";
      $("progress-fill").style.width = "100%";
      return;
    }
    if (t.phase === "practice") {
      $("progress-text").textContent = "Practice " + (t.trial_index + 1) + " of " + state.practice.length;
      $("progress-fill").style.width = "0%";
    } else {
      $("progress-text").textContent = "Trial " + (t.trial_index + 1) + " of " + nTest;
      $("progress-fill").style.width = (100 * t.trial_index / nTest).toFixed(1) + "%";
    }
  }

  function button(label, value, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.value = String(value);
    b.addEventListener("click", onClick);
    return b;
  }

  function endLabel(text) {
    const s = document.createElement("span");
    s.className = "end-label";
    s.textContent = text;
    return s;
  }

  // Keyboard answers, as in jsPsych/PsychoPy: digit keys for a scale's buttons, ← and → for a direction.
  function keyAnswer(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
    const kind = state.cfg.widget;
    if ((kind === "rating" || kind === "count") && /^[0-9]$/.test(ev.key)) {
      const b = $("widget").querySelector('button[data-value="' + ev.key + '"]');
      if (b && !b.disabled) { b.click(); return true; }
    } else if (kind === "choice" && (ev.key === "ArrowLeft" || ev.key === "ArrowRight")) {
      const b = $("widget").querySelector('button[data-value="' + (ev.key === "ArrowLeft" ? "left" : "right") + '"]');
      if (b && !b.disabled) { b.click(); return true; }
    }
    return false;
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.repeat) return;
    if (state.keyHandler && state.keyHandler(ev)) { ev.preventDefault(); return; }
    // Enter or space continues after practice feedback (a focused button handles its own keys).
    const c = $("feedback-continue");
    if ((ev.key === "Enter" || ev.key === " ") && !$("feedback").hidden && !c.disabled &&
        !(ev.target instanceof HTMLButtonElement)) {
      ev.preventDefault();
      c.click();
    }
  });

  function keysHint(text) {
    const p = document.createElement("p");
    p.className = "keys-hint";
    p.id = "keys-hint";
    p.textContent = text;
    return p;
  }

  function disableWidget() {
    state.keyHandler = null;
    for (const el of $("widget").querySelectorAll("button, input")) el.disabled = true;
    $("stage").classList.remove("clickable");
    $("stage").onclick = null;
  }

  function buildWidget(trial, answer) {
    const w = $("widget");
    w.textContent = "";
    const row = document.createElement("div");
    row.className = "widget-row";
    w.appendChild(row);
    const kind = state.cfg.widget;
    if (kind === "rating" || kind === "count") {
      // One row of equal buttons that shrinks to fit a phone; the end labels go on their own line below.
      row.className = "widget-row scale-row";
      row.id = "scale-row";
      for (let v = trial.low; v <= trial.high; v++) row.appendChild(button(String(v), v, () => answer(v)));
      if (kind === "rating" && (state.cfg.low_label || state.cfg.high_label)) {
        const labels = document.createElement("div");
        labels.className = "scale-labels";
        labels.append(endLabel(state.cfg.low_label || ""), endLabel(state.cfg.high_label || ""));
        w.appendChild(labels);
      }
      w.appendChild(keysHint(trial.low <= 9 ?
        "Press a key " + trial.low + "–" + Math.min(trial.high, 9) + " or click a button." : "Click a button."));
      state.keyHandler = keyAnswer;
    } else if (kind === "choice") {
      row.appendChild(button("◀ Left", "left", () => answer("left")));
      row.appendChild(button("Right ▶", "right", () => answer("right")));
      w.appendChild(keysHint("Press ← or → or click a button."));
      state.keyHandler = keyAnswer;
    } else if (kind === "slider") {
      const input = document.createElement("input");
      input.type = "range"; input.min = "0"; input.max = "100"; input.step = "1"; input.value = "50";
      input.id = "slider";
      const out = document.createElement("span");
      out.id = "slider-value"; out.textContent = "–";
      const submit = button("Submit", "submit", () => answer(Number(input.value)));
      submit.id = "submit"; submit.disabled = true;
      input.addEventListener("input", () => { out.textContent = input.value; submit.disabled = false; });
      row.append(endLabel(state.cfg.low_label || "0"), input, endLabel(state.cfg.high_label || "100"), out, submit);
    } else if (kind === "click") {
      let chosen = null;
      const submit = button("Submit", "submit", () => { if (chosen !== null) answer(chosen); });
      submit.id = "submit"; submit.disabled = true;
      row.append(submit);
      const stage = $("stage");
      stage.classList.add("clickable");
      stage.onclick = (ev) => {
        const img = $("stimulus");
        const rect = img.getBoundingClientRect();
        const fx = (ev.clientX - rect.left) / rect.width;
        if (fx < 0 || fx > 1) return;
        const [x0, x1] = trial.frame;
        chosen = Math.round((x0 + fx * (x1 - x0)) * 1e4) / 1e4;
        chosen = Math.min(Math.max(chosen, trial.low), trial.high);
        const m = $("marker");
        m.hidden = false;
        m.style.left = (fx * rect.width - 1) + "px";
        submit.disabled = false;
      };
    }
  }

  function describe(value) {
    if (state.cfg.widget === "click") return "x = " + Number(value).toFixed(2) + " m";
    return String(value);
  }

  function showTrial() {
    const trial = state.trials[state.pos];
    if (!trial) return finish();
    progress();
    show("trial");
    $("phase-label").textContent = trial.phase === "practice" ? "Practice (you will see what happens)" : "";
    $("prompt").textContent = state.cfg.prompt;
    $("feedback").hidden = true;
    $("animation").hidden = true;
    $("marker").hidden = true;
    $("widget").textContent = "";
    const img = $("stimulus");
    img.onload = () => {
      state.shownAt = performance.now();
      let answered = false;
      buildWidget(trial, (value) => {
        if (answered) return;
        answered = true;
        disableWidget();
        record(trial, value);
        if (trial.phase === "practice") practiceFeedback(trial, value);
        else { state.pos += 1; showTrial(); }
      });
    };
    img.onerror = () => { setTimeout(() => { img.src = trial.image + "?retry=" + Date.now(); }, 1000); };
    img.src = trial.image;
  }

  async function practiceFeedback(trial, value) {
    const r = await apiRetry("GET", trial.feedback);
    const fb = $("feedback");
    fb.hidden = false;
    $("feedback-continue").disabled = true;
    $("feedback-text").textContent = "Your answer: " + describe(value) + ". Watch what happens…";
    const done = () => {
      $("feedback-text").textContent = "Your answer: " + describe(value) + ". What happened: " +
        (r.data && r.data.feedback ? r.data.feedback : "");
      const c = $("feedback-continue");
      c.disabled = false;
      c.onclick = () => { c.onclick = null; state.pos += 1; showTrial(); };
    };
    if (r.status === 200 && r.data) animate(trial, r.data, done); else done();
  }

  function animate(trial, anim, done) {
    const img = $("stimulus");
    const canvas = $("animation");
    const W = img.naturalWidth, H = img.naturalHeight;
    canvas.width = W; canvas.height = H;
    canvas.style.width = img.clientWidth + "px"; canvas.style.height = img.clientHeight + "px";
    canvas.hidden = false;
    const ctx = canvas.getContext("2d");
    const [x0, x1, y0, y1] = trial.frame;
    const sx = W / (x1 - x0), sy = H / (y1 - y0);
    const px = (x) => (x - x0) * sx, py = (y) => H - (y - y0) * sy;
    function draw(k, t) {
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, W, H);
      for (const s of anim.statics) {
        ctx.fillStyle = s.color; ctx.strokeStyle = s.color;
        if (s.kind === "segment") {
          ctx.lineWidth = Math.max(1, 2 * s.r * sx); ctx.lineCap = "round";
          ctx.beginPath(); ctx.moveTo(px(s.a[0]), py(s.a[1])); ctx.lineTo(px(s.b[0]), py(s.b[1])); ctx.stroke();
        } else {
          ctx.beginPath();
          s.pts.forEach((p, i) => (i ? ctx.lineTo(px(p[0]), py(p[1])) : ctx.moveTo(px(p[0]), py(p[1]))));
          ctx.closePath(); ctx.fill();
        }
      }
      const frame = anim.frames[k];
      anim.bodies.forEach((b, i) => {
        if (b.removed_at !== null && b.removed_at !== undefined && t >= b.removed_at) return;
        const [x, y, a] = frame[i];
        ctx.save();
        ctx.translate(px(x), py(y));
        ctx.rotate(-a);
        ctx.fillStyle = b.color; ctx.strokeStyle = "#222"; ctx.lineWidth = 1;
        ctx.beginPath();
        if (b.kind === "ball") ctx.arc(0, 0, b.r * sx, 0, 2 * Math.PI);
        else ctx.rect(-b.w / 2 * sx, -b.h / 2 * sy, b.w * sx, b.h * sy);
        ctx.fill(); ctx.stroke();
        ctx.restore();
      });
    }
    const times = anim.times;
    const end = times[times.length - 1];
    const start = performance.now();
    function tick() {
      const t = (performance.now() - start) / 1000;
      let k = 0;
      while (k + 1 < times.length && times[k + 1] <= t) k++;
      draw(k, times[k]);
      if (t < end) requestAnimationFrame(tick); else done();
    }
    requestAnimationFrame(tick);
  }

  async function finish() {
    progress();
    show("saving");
    while (state.outbox.length || state.sending) {
      flush();
      await sleep(200);
    }
    const r = await apiRetry("POST", "/api/complete", { participant: state.pid, token: state.token });
    if (r.status === 200 && r.data && r.data.completion_code) {
      $("completion-code").textContent = r.data.completion_code;
      show("done");
    } else {
      fail((r.data && r.data.error) || "Could not finish the session (" + r.status + ").");
    }
  }

  // ------------------------------------------------------------------ session

  function buildTrials(session) {
    state.practice = session.practice.map((t, i) => Object.assign({}, t, { phase: "practice", trial_index: i }));
    state.test = session.test.map((t, i) => Object.assign({}, t, { phase: "test", trial_index: i }));
    state.trials = state.practice.concat(state.test);
    for (const i of session.answered.practice) state.done.add("practice:" + i);
    for (const i of session.answered.test) state.done.add("test:" + i);
    state.saved += session.answered.practice.length + session.answered.test.length;
    updateStatus();
    for (const item of state.outbox) state.done.add(item.phase + ":" + item.trial_index);
    state.pos = state.trials.findIndex((t) => !state.done.has(t.phase + ":" + t.trial_index));
    if (state.pos < 0) state.pos = state.trials.length;
  }

  async function startSession(condition) {
    const body = { participant: state.pid };
    if (state.token) body.token = state.token;
    else if (condition) body.condition = condition;
    const r = await apiRetry("POST", "/api/session", body);
    if (r.status !== 200) {
      fail((r.data && r.data.error) || "Could not start the session (" + r.status + ").");
      return null;
    }
    state.token = r.data.token;
    save();
    buildTrials(r.data);
    // Load every picture now, so the session goes on even if the connection drops for a while.
    state.preloaded = state.trials.slice(state.pos).map((t) => { const im = new Image(); im.src = t.image; return im; });
    return r.data;
  }

  async function main() {
    const params = new URLSearchParams(location.search);
    const cfgRes = await apiRetry("GET", "/api/config");
    state.cfg = cfgRes.data;
    document.title = state.cfg.title;
    $("title").textContent = state.cfg.title;
    const pid = params.get("id") || params.get("PROLIFIC_PID") || params.get("SONA_ID");
    if (!pid) {
      show("id");
      $("id-form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        const v = $("id-input").value.trim();
        if (!PID_RE.test(v)) return;
        params.set("id", v);
        location.search = params.toString();
      });
      return;
    }
    if (!PID_RE.test(pid)) return fail("The participant id in this link is not valid.");
    state.pid = pid;
    load();
    updateStatus();
    if (state.outbox.length) flush();
    if (state.token) {
      const s = await startSession(null);
      if (!s) return;
      if (s.completed && s.completion_code && !state.outbox.length) {
        $("completion-code").textContent = s.completion_code;
        $("progress").hidden = true;
        return show("done");
      }
      return showTrial();
    }
    paragraphs($("consent-text"), state.cfg.consent);
    show("consent");
    $("consent-agree").addEventListener("click", async () => {
      $("consent-agree").disabled = true;
      const s = await startSession(params.get("condition"));
      if (!s) return;
      paragraphs($("instructions-text"), state.cfg.instructions);
      $("instructions-note").textContent = (state.practice.length ?
        "You will first do " + plural(state.practice.length, "practice trial") + " and see what really happens, " +
        "then " : "There are ") + plural(state.test.length, "trial") + ".";
      show("instructions");
      $("instructions-start").addEventListener("click", () => showTrial(), { once: true });
    });
  }

  window.addEventListener("online", () => flush());
  main().catch((e) => fail("Something went wrong: " + e));
})();
