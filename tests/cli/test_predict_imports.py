"""``ipe predict --params`` reads a fit's params.json without importing torch and Pyro (start-up time)."""
import subprocess
import sys


def test_reading_fitted_parameters_does_not_import_torch():
    code = ("import sys, ipe.cli.predict, ipe.montecarlo\n"
            "from ipe.inference.fitfiles import load_params, load_population\n"
            "from ipe.inference import load_params as again\n"
            "assert again is load_params\n"
            "heavy = sorted(m for m in ('torch', 'pyro', 'arviz') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
