"""Where the Strata checkout is, and the session file `strata dev` leaves in it."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def project_root() -> Path:
    """The folder holding template.yaml: from STRATA_ROOT, the working directory or this package's checkout."""
    candidates = [Path(os.environ["STRATA_ROOT"])] if "STRATA_ROOT" in os.environ else []
    candidates += [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / "template.yaml").is_file() and (folder / "shared" / "strata").is_dir():
            return folder
    raise typer.BadParameter("no Strata checkout found (template.yaml); run from the project or set STRATA_ROOT")


def session_file(root: Path) -> Path:
    """`strata dev`'s session: the running local cloud's URLs and its admin key."""
    return root / ".strata" / "dev.json"
