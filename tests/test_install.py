"""The install: what `pip install -e .` leaves out, and what a feature says when its extra is missing.

The optional packages (``ipe.fileio.OPTIONAL``) are declared as extras in pyproject.toml; without one, the
feature that needs it says in one line which extra to install (exit status 2 on the command line), and
``ipe sweep``, which caches by default, runs without its cache and says so. A missing package is simulated by
putting ``None`` into ``sys.modules`` (then ``import`` raises ImportError), so these tests run in any install.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ipe.cli import main
from ipe.errors import InputError
from ipe.fileio import OPTIONAL, MissingExtra, optional_import

ROOT = Path(__file__).resolve().parents[1]
TOWERS = ROOT / "data" / "demo_towers.json"


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")


def test_pyproject_declares_each_optional_package_in_its_extra_and_not_in_the_install():
    project = _project()
    core = {_name(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    for module, (dist, extra) in OPTIONAL.items():
        assert dist not in core, f"{dist} is optional ({extra}) but `pip install .` installs it"
        assert dist in {_name(r) for r in extras[extra]}, f"extra {extra!r} does not install {dist}"
    named = {e for _, e in OPTIONAL.values()}
    assert extras["all"] == [f"ipe[{','.join(sorted(named, key=list(e for _, e in OPTIONAL.values()).index))}]"]
    assert "ipe[all]" in extras["dev"]  # CI installs .[dev] and so tests every feature


def _without(monkeypatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError


def _hidden_from_ipe(monkeypatch, module: str) -> None:
    """Only ipe's optional_import misses ``module`` (pandas, which imported pyarrow already, keeps it)."""
    import importlib

    import ipe.fileio

    def import_module(name, *args):
        if name == module:
            raise ImportError(f"No module named {name!r}")
        return importlib.import_module(name, *args)

    monkeypatch.setattr(ipe.fileio, "importlib", type("Fake", (), {"import_module": staticmethod(import_module)}))


def test_optional_import_names_the_extra(monkeypatch):
    _without(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtra) as err:
        optional_import("pyarrow", "the simulation cache")
    assert str(err.value) == 'the simulation cache needs pyarrow, which is not installed: pip install "ipe[parquet]"'
    assert isinstance(err.value, InputError)  # one line on the command line, exit status 2


def test_the_simulation_cache_needs_the_parquet_extra(monkeypatch, tmp_path, demo):
    import ipe

    _without(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtra, match=r'pip install "ipe\[parquet\]"'):
        ipe.simulate(demo, ipe.NoiseParams(sigma=0.1), n_samples=2, seed=0, cache=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_a_parquet_response_table_needs_the_parquet_extra(monkeypatch, tmp_path):
    from ipe.humans import load_responses

    p = tmp_path / "r.parquet"
    p.write_bytes(b"PAR1")
    _without(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtra, match=r'r\.parquet: reading Parquet needs pyarrow.*"ipe\[parquet\]"'):
        load_responses(p)


def test_mp4_video_needs_the_video_extra(monkeypatch, tmp_path, demo):
    from ipe.video.frames import write_mp4
    from ipe.video.physics_iq import score_videos
    from ipe.video.readout import read_video

    _without(monkeypatch, "imageio_ffmpeg")
    with pytest.raises(MissingExtra, match=r'writing MP4 video needs imageio-ffmpeg.*"ipe\[video\]"'):
        write_mp4(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), np.uint8), fps=30)
    assert not (tmp_path / "v.mp4").exists()
    rc = main(["render", str(TOWERS), "--video", "--size", "16", "--out", str(tmp_path / "r")])
    assert rc == 2 and not (tmp_path / "r").exists()  # refused before anything is written
    (tmp_path / "w.mp4").write_bytes(b"\0" * 64)
    with pytest.raises(MissingExtra, match=r'reading video needs imageio-ffmpeg.*"ipe\[video\]"'):
        read_video(tmp_path / "w.mp4")  # not flagged as an unreadable video: the package is missing
    with pytest.raises(MissingExtra, match=r'"ipe\[video\]"'):  # not every video flagged unreadable
        score_videos([tmp_path / "w.mp4"], tmp_path, demo)


def test_mental_jenga_rdata_needs_its_extra(monkeypatch, tmp_path):
    from ipe.datasets.mental_jenga import _read_r

    _without(monkeypatch, "pyreadr")
    with pytest.raises(MissingExtra, match=r'reading R data needs pyreadr.*"ipe\[mental-jenga\]"'):
        _read_r(tmp_path / "x.RData")


def test_cli_cache_without_the_extra_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    _without(monkeypatch, "pyarrow")
    code = main(["predict", str(TOWERS), "--sigma", "0.1", "--samples", "2", "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].endswith('the simulation cache (rollouts stored as Parquet) needs pyarrow, which is not '
                            'installed: pip install "ipe[parquet]"')
    assert not (tmp_path / "p.csv").exists()


def test_sweep_runs_without_its_default_cache_and_says_so(monkeypatch, tmp_path, capsys):
    _hidden_from_ipe(monkeypatch, "pyarrow")
    out = tmp_path / "s.csv"
    assert main(["sweep", str(TOWERS), "--grid", "sigma=0.1", "--samples", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert 'sweep: no simulation cache: the simulation cache needs pyarrow, which is not installed: ' \
           'pip install "ipe[parquet]"' in err
    assert "hit(s)" not in err  # no cache was used (with one, the sweep reports its hits and misses)
    assert out.is_file()
    code = main(["sweep", str(TOWERS), "--grid", "sigma=0.1", "--samples", "2", "--out", str(out),
                 "--rollouts", str(tmp_path / "r.parquet")])
    assert code == 2 and '"ipe[parquet]"' in capsys.readouterr().err


_README_SIZE = {  # where the README gives each install's size
    "": r"\*\*(\d\.\d) GB\*\* with `pip install -e \.`",
    "[all]": r"every feature \((\d\.\d) GB\)",
    "[dev]": r"building the docs \((\d\.\d) GB\)",
}


@pytest.mark.slow
@pytest.mark.parametrize("extra", list(_README_SIZE))
def test_a_fresh_venv_has_the_readmes_size_and_runs_the_demo(tmp_path, extra):
    """The README's install in a fresh venv (torch from the pinned CPU wheel, as .ci/run): its ``du -sh`` is
    the README's number (``pip install -e .``: at most 1.5 GB), and ``ipe demo`` runs in it. 2-3 min each."""
    import subprocess

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0"], check=True, capture_output=True)
    subprocess.run([*pip, "-e", f".{extra}"], cwd=ROOT, check=True, capture_output=True)
    du = subprocess.run(["du", "-sh", str(venv)], check=True, capture_output=True, text=True).stdout.split()[0]
    assert du.endswith("G"), du
    print(f"pip install -e .{extra}: {du}")
    documented = re.search(_README_SIZE[extra], (ROOT / "README.md").read_text(encoding="utf-8")).group(1)
    assert du[:-1] == documented, f"README says {documented} GB for `pip install -e .{extra}`, du -sh says {du}"
    if extra == "":
        assert float(du[:-1]) <= 1.5
    run = subprocess.run([str(venv / "bin" / "ipe"), "demo", "--samples", "5", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "demo" / "demo.png").is_file()
