"""Imports the command modules so that their commands join ``ipe.cli.app``.

Each module below defines its commands on ``ipe.cli.app`` (or a sub-app it
adds there). Add one line per new module.
"""

from __future__ import annotations

from . import fit  # noqa: F401,E402
from . import infer  # noqa: F401,E402
from . import humans  # noqa: F401,E402
from . import datasets  # noqa: F401,E402
from . import cache  # noqa: F401,E402
from . import experiment  # noqa: F401,E402
from . import experiment_simulate  # noqa: F401,E402
from . import video  # noqa: F401,E402
from . import trajectories  # noqa: F401,E402
from . import sweep  # noqa: F401,E402
