"""The browser experiment for course labs: a server, a page, an SQLite store and exports.

The command is ``ipe experiment``; the package is ``webexperiment`` so that it is not mistaken for the
study scripts in ``experiments/``.

Build the materials, open a store, serve::

    from ipe.webexperiment import ExperimentConfig, build_materials, Store, create_app, serve
    from ipe.webexperiment.materials import design_json

    m = build_materials("towers.json", ExperimentConfig(task="will-it-fall", practice=2))
    store = Store("lab.db", design=design_json(m), fingerprint=m.fingerprint, stimulus_set=m.stimulus_set)
    serve(create_app(m, store), host="127.0.0.1", port=8000)

or, from the shell, ``ipe experiment serve towers.json --task will-it-fall --db lab.db``.
``ipe experiment export lab.db --out responses.csv`` writes the tidy
response table that ``ipe fit`` reads. The HTTP API is documented in
``docs/experiment-api.md``.
"""

from __future__ import annotations

from .export import export_materials, export_responses, load_experiment, response_table
from .materials import ExperimentConfig, Materials, build_materials, design_json
from .server import create_app, serve
from .store import Store, open_store
from .tasks import TASK_NAMES, TASKS, Task, get_task

__all__ = [
    "ExperimentConfig", "Materials", "build_materials", "design_json", "Store", "open_store", "create_app", "serve",
    "export_responses", "export_materials", "response_table", "load_experiment", "Task", "TASKS", "TASK_NAMES",
    "get_task",
]
