"""Where the shipped, non-Python folders (``templates/``, ``config/``) are.

In a checkout they sit at the repository root beside ``worker/``; in an installed wheel
they are packed as ``worker/_shipped/`` (see ``[tool.hatch.build…force-include]``).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The folder ``templates`` or ``config`` that came with this copy of steadyhand."""
    installed = _HERE / "_shipped" / name
    if installed.is_dir():
        return installed
    return _HERE.parent / name
