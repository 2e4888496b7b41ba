"""The simulation cache: content-addressed keys, fast identical hits, corrupt entries recomputed, safe writers."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ipe
import ipe.cache as cache_mod
from ipe.cache import SimulationCache, physics_version, verify_entry
from ipe.cli import main
from ipe.errors import InputError
from ipe.montecarlo import PARAM_COLUMNS, iter_points, simulate
from ipe.noise import NoiseParams
from ipe.scene import Query
from ipe.scenefile import save_stimuli

NOISY = NoiseParams(sigma=0.2, phi=0.05)


@pytest.fixture(scope="module")
def three(demo):
    return ipe.StimulusSet(stimuli=tuple(demo)[:3], name="demo3")


def _entries(root: Path) -> list[Path]:
    return sorted(root.glob("physics-*/*/*.parquet"))


# --------------------------------------------------------------------------- keys


def test_every_input_of_a_rollout_changes_the_key(three, tmp_path):
    c = SimulationCache(tmp_path)
    s = three[0]
    text = c.stimulus_text(s)
    base = dict(stimulus_text=text, params=NOISY, point_key=NOISY.key(), seed=1, start=0, stop=10,
                queries=[s.query], early_stop=True)
    k0 = c.key(**base)
    assert k0 == c.key(**base) and len(k0) == 64
    variants = [
        dict(stimulus_text=c.stimulus_text(three[1])),
        dict(stimulus_text=c.stimulus_text(replace(s, id="renamed"))),  # the id seeds every rollout
        dict(point_key=0), dict(seed=2), dict(start=1), dict(stop=11), dict(early_stop=False),
        dict(queries=[Query("count_fallen")]), dict(queries=[s.query, Query("count_fallen")]),
    ]
    # every noise parameter, whatever NoiseParams holds
    for name in PARAM_COLUMNS:
        variants.append(dict(params=NoiseParams(**{**NOISY.as_dict(), name: NOISY.as_dict()[name] + 0.125})))
    keys = {c.key(**{**base, **v}) for v in variants}
    assert len(keys) == len(variants) and k0 not in keys


def test_the_physics_version_is_in_the_key_and_the_directory(three, tmp_path, monkeypatch):
    a = SimulationCache(tmp_path)
    k = a.key(a.stimulus_text(three[0]), NOISY, 0, 0, 0, 5, [three[0].query], True)
    assert "pymunk-" in physics_version() and "+src." in physics_version()
    monkeypatch.setattr(cache_mod, "physics_version", lambda: "ipe-physics-999 other")
    b = SimulationCache(tmp_path)
    assert b.key(b.stimulus_text(three[0]), NOISY, 0, 0, 0, 5, [three[0].query], True) != k
    assert b.path("ab" * 32).parent.parent != a.path("ab" * 32).parent.parent


# --------------------------------------------------------------------------- hits


def test_a_hit_is_identical_and_at_least_20x_faster_than_a_miss(three, tmp_path):
    points = [NOISY, NoiseParams(sigma=0.1)]
    c = SimulationCache(tmp_path)
    t = time.perf_counter()
    miss = simulate(three, points, n_samples=25, seed=4, cache=c)
    t_miss = time.perf_counter() - t
    assert (c.stats.hits, c.stats.misses, c.stats.writes) == (0, 6, 6)
    t_hit, hits = [], []
    for _ in range(3):
        c2 = SimulationCache(tmp_path)
        t = time.perf_counter()
        hits.append(simulate(three, points, n_samples=25, seed=4, cache=c2))
        t_hit.append(time.perf_counter() - t)
        assert (c2.stats.hits, c2.stats.misses, c2.stats.writes) == (6, 0, 0)
    for h in hits:
        assert h.equals(miss)
    assert simulate(three, points, n_samples=25, seed=4).equals(miss)  # and equal to no cache at all
    assert t_miss >= 20 * min(t_hit), (t_miss, t_hit)


def test_sweeps_reuse_the_points_they_share(three, tmp_path):
    c = SimulationCache(tmp_path)
    simulate(three, iter_points(sigma=[0.0, 0.2]), n_samples=6, seed=0, cache=c, common_random_numbers=True)
    c2 = SimulationCache(tmp_path)
    grid = iter_points(sigma=[0.0, 0.2, 0.4])
    got = simulate(three, grid, n_samples=6, seed=0, cache=c2, common_random_numbers=True)
    assert (c2.stats.hits, c2.stats.misses) == (6, 3)
    assert got.equals(simulate(three, grid, n_samples=6, seed=0, common_random_numbers=True))
    # without common random numbers the seeds differ, so nothing is reused
    c3 = SimulationCache(tmp_path)
    simulate(three, iter_points(sigma=[0.0]), n_samples=6, seed=0, cache=c3)
    assert c3.stats.hits == 0


def test_emulator_refit_reuses_the_grid(three, tmp_path):
    from ipe.inference import Emulator

    kw = dict(grid={"sigma": [0.0, 0.3], "phi": [0.0, 0.2]}, n_samples=4, seed=1)
    c1 = SimulationCache(tmp_path)
    a = Emulator(cache=c1, **kw).fit(three)
    c2 = SimulationCache(tmp_path)
    b = Emulator(cache=c2, **kw).fit(three)
    assert c1.stats.misses == 12 and c2.stats.hits == 12 and c2.stats.misses == 0
    assert np.array_equal(a.grid_means_, b.grid_means_)


# --------------------------------------------------------------------------- corruption


def _corruptions():
    def flip_byte(p: Path):
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0xFF
        p.write_bytes(bytes(b))

    def truncate(p: Path):
        p.write_bytes(p.read_bytes()[:100])

    def empty(p: Path):
        p.write_bytes(b"")

    def tamper_value(p: Path):  # a valid Parquet file whose data no longer match the checksum
        t = pq.read_table(p)
        v = t.column("value").to_numpy().copy()
        v[0] = 0.5 if v[0] != 0.5 else 0.25
        t = t.set_column(t.schema.get_field_index("value"), "value", pa.array(v))
        pq.write_table(t, p)

    def other_entry(p: Path):  # another entry's (valid) file under this name
        others = [q for q in _entries(p.parents[2]) if q != p]
        p.write_bytes(others[0].read_bytes())

    return [flip_byte, truncate, empty, tamper_value, other_entry]


@pytest.mark.parametrize("damage", _corruptions(), ids=lambda f: f.__name__)
def test_a_corrupt_entry_is_recomputed_never_served(three, tmp_path, damage):
    clean = simulate(three, NOISY, n_samples=5, seed=8, cache=tmp_path)
    victim = _entries(tmp_path)[0]
    damage(victim)
    assert not verify_entry(victim)
    c = SimulationCache(tmp_path)
    info = c.info(verify=True)
    assert info.corrupt == [victim]
    again = simulate(three, NOISY, n_samples=5, seed=8, cache=c)
    assert again.equals(clean)
    assert (c.stats.corrupt, c.stats.hits, c.stats.misses, c.stats.writes) == (1, 2, 1, 1)
    assert verify_entry(victim)  # rewritten, good again
    assert SimulationCache(tmp_path).info(verify=True).corrupt == []


def test_an_entry_for_other_samples_is_not_served(three, tmp_path):
    c = SimulationCache(tmp_path)
    s = three[0]
    k = c.key(c.stimulus_text(s), NOISY, NOISY.key(), 0, 0, 3, [s.query], True)
    c.put(k, 0, 3, [s.query.key], np.zeros((3, 1)), np.ones(3, dtype=np.int64))
    assert c.get(k, 0, 3, [s.query.key]) is not None
    assert c.get(k, 0, 4, [s.query.key]) is None  # asked for more samples than stored
    assert c.stats.corrupt == 1


# --------------------------------------------------------------------------- concurrent writers


def _hammer(args):
    root, key, worker = args
    c = SimulationCache(root)
    vals = np.arange(200, dtype=float).reshape(100, 2) / 7
    steps = np.arange(100, dtype=np.int64)
    bad = 0
    for i in range(40):
        if (i + worker) % 2:
            c.put(key, 0, 100, ["fall", "count_fallen"], vals, steps)
        got = c.get(key, 0, 100, ["fall", "count_fallen"])
        if got is not None and not (np.array_equal(got[0], vals) and np.array_equal(got[1], steps)):
            bad += 1
    return bad, c.stats.corrupt


def test_concurrent_writers_and_readers_never_see_a_partial_entry(tmp_path):
    key = "c0ffee" * 10 + "abcd"
    ctx = mp.get_context("fork")
    with ctx.Pool(3) as pool:
        out = pool.map(_hammer, [(str(tmp_path), key, w) for w in range(3)])
    assert out == [(0, 0)] * 3
    assert verify_entry(SimulationCache(tmp_path).path(key))
    assert not list(tmp_path.rglob("*.tmp"))


# --------------------------------------------------------------------------- CLI


def test_cli_predict_with_cache_then_info_and_clear(three, tmp_path, capsys):
    stim = tmp_path / "three.json"
    save_stimuli(three, stim)
    cdir = tmp_path / "cache"
    args = ["predict", str(stim), "--sigma", "0.2", "--samples", "5", "--cache-dir", str(cdir)]
    assert main(args + ["--out", str(tmp_path / "a.csv")]) == 0
    assert "0 hit(s), 3 miss(es)" in capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "b.csv")]) == 0
    assert "3 hit(s), 0 miss(es)" in capsys.readouterr().err
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()

    assert main(["cache", "info", "--dir", str(cdir), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "entries: 3 " in out and physics_version() in out and "corrupt entries: 0" in out

    # an entry of another physics version is stale: --stale removes it, keeps the current ones
    stale = cdir / "physics-000000000000" / "ab"
    stale.mkdir(parents=True)
    (stale / ("ab" * 32 + ".parquet")).write_bytes(b"old")
    assert main(["cache", "info", "--dir", str(cdir)]) == 0
    assert "stale entries: 1" in capsys.readouterr().out
    assert main(["cache", "clear", "--dir", str(cdir), "--stale"]) == 0
    assert "removed 1 file(s)" in capsys.readouterr().err
    assert len(_entries(cdir)) == 3
    assert main(["cache", "clear", "--dir", str(cdir)]) == 0
    assert "removed 3 file(s)" in capsys.readouterr().err
    assert _entries(cdir) == []


def test_cli_cache_bad_input_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["cache", "info", "--dir", str(f)]) == 2
    assert main(["predict", "data/demo_towers.json", "--out", str(tmp_path / "o.csv"), "--cache-dir", str(f)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("ipe: error:") == 2
    with pytest.raises(InputError):
        simulate("data/demo_towers.json", n_samples=1, cache=3.5)


def test_default_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IPE_CACHE_DIR", str(tmp_path / "x"))
    assert SimulationCache().root == tmp_path / "x"
    monkeypatch.delenv("IPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert SimulationCache().root == tmp_path / "xdg" / "ipe" / "simulations"


# --------------------------------------------------------------------------- the sweep benchmark (smoke)


def test_bench_sweep_quick_runs_and_its_tables_agree(tmp_path):
    """``benchmarks/bench_sweep.py --quick --skip-dask``: runs, writes its JSON, identical tables, a cache hit."""
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "sweep.json"
    proc = subprocess.run([sys.executable, str(repo / "benchmarks" / "bench_sweep.py"), "--quick", "--skip-dask",
                           "--out", str(out)], cwd=repo, env=dict(os.environ, IPE_NO_PROGRESS="1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["scaling"]["identical"] and res["cache_hit_identical"]
    assert res["sweep_process"]["rollouts"] == res["sweep_cache_hit"]["rollouts"] == 4 * 3 * 3
    assert res["plain_rollouts_per_cpu_s"] > 0 and res["projection_full_sweep"]["rollouts"] == 506_880


# --------------------------------------------------------------------------- keyed checksums (issue 20)


def _forge(p: Path, checksum) -> None:
    """Change an entry's first value and give it the checksum ``checksum(meta, sample, value, steps)``."""
    t = pq.read_table(p)
    meta = {k.decode(): v.decode() for k, v in t.schema.metadata.items()}
    v = t.column("value").to_numpy().copy()
    v[0] = 0.5 if v[0] != 0.5 else 0.25
    t = t.set_column(t.schema.get_field_index("value"), "value", pa.array(v))
    sample, steps = t.column("sample").to_numpy(), t.column("steps").to_numpy()
    meta["ipe.checksum"] = checksum(meta, sample, v, steps)
    pq.write_table(t.replace_schema_metadata({k.encode(): x.encode() for k, x in meta.items()}), p)


def _plain_sha256(meta, sample, value, steps):  # the checksum of the old, unkeyed format
    import hashlib
    import json

    h = hashlib.sha256()
    h.update(f"{meta['ipe.key']}\0{meta['ipe.start']}\0{meta['ipe.stop']}\0".encode())
    h.update("\x1f".join(json.loads(meta["ipe.queries"])).encode() + b"\0")
    for a, dt in ((sample, "<i8"), (value, "<f8"), (steps, "<i8")):
        h.update(np.ascontiguousarray(a, dtype=dt).tobytes())
    return h.hexdigest()


def _other_secret(meta, sample, value, steps):  # a well-formed HMAC under a key the forger chose
    import json

    return cache_mod._checksum(b"\x01" * 32, meta["ipe.key"], int(meta["ipe.start"]), int(meta["ipe.stop"]),
                               json.loads(meta["ipe.queries"]), sample, value, steps)


@pytest.mark.parametrize("checksum", [_plain_sha256, _other_secret], ids=["unkeyed-sha256", "other-secret"])
def test_a_forged_entry_is_recomputed_never_served(three, tmp_path, checksum):
    clean = simulate(three, NOISY, n_samples=5, seed=8, cache=tmp_path)
    secret = tmp_path / "SECRET"
    assert secret.is_file() and (secret.stat().st_mode & 0o777) == 0o600
    victim = _entries(tmp_path)[0]
    _forge(victim, checksum)
    assert not verify_entry(victim)
    c = SimulationCache(tmp_path)
    assert c.info(verify=True).corrupt == [victim]
    assert simulate(three, NOISY, n_samples=5, seed=8, cache=c).equals(clean)
    assert c.stats.corrupt == 1 and verify_entry(victim)


def test_the_secret_must_be_private_and_ours(tmp_path):
    k = "ab" * 32
    SimulationCache(tmp_path).put(k, 0, 2, ["fall"], np.zeros((2, 1)), np.ones(2, dtype=np.int64))
    secret = tmp_path / "SECRET"
    secret.chmod(0o644)
    with pytest.raises(InputError, match="others may read or change it"):
        SimulationCache(tmp_path).get(k, 0, 2, ["fall"])
    secret.chmod(0o600)
    assert SimulationCache(tmp_path).get(k, 0, 2, ["fall"]) is not None
    secret.write_text("not hex\n")
    with pytest.raises(InputError, match="not 64 hex digits"):
        SimulationCache(tmp_path).get(k, 0, 2, ["fall"])
    secret.unlink()
    secret.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="not a plain file"):
        SimulationCache(tmp_path).get(k, 0, 2, ["fall"])
    secret.unlink()  # a new secret: the old entries cannot be verified, so they are recomputed, never served
    c = SimulationCache(tmp_path)
    assert c.get(k, 0, 2, ["fall"]) is None and c.stats.corrupt == 1
    n, _ = c.clear()
    assert (tmp_path / "SECRET").is_file(), "clearing the entries keeps the secret"
