"""Where the project keeps its state: never inside the installed package.

``PIPELINE_STATE_DIR`` names the folder; without it, ``var`` under the current directory (the
repository's ``var/`` for `make run` and `make test`). The local broker lives in ``kafka/``
below it, each worker's tables in ``worker/<app id>/<slot>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_VARIABLE = "PIPELINE_STATE_DIR"


def state_root() -> Path:
    configured = os.environ.get(STATE_DIR_VARIABLE, "").strip()
    return (Path(configured).expanduser() if configured else Path.cwd() / "var").absolute()
