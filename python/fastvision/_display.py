"""Pictures the engine draws (PNG bytes), shown inline by Jupyter and saved anywhere else."""

from __future__ import annotations

import os
from typing import Optional, Union


class Image:
    """A PNG picture: a notebook shows it inline (``_repr_png_``); ``save`` writes it."""

    def __init__(self, data: bytes, title: str = "") -> None:
        self.data = bytes(data)
        self.title = title
        self._shown = False

    def _repr_png_(self) -> Optional[bytes]:
        if self._shown:  # shown already where it was made: not again as the cell's value
            self._shown = False
            return None
        return self.data

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the picture as a new PNG file at ``path`` (an existing file is never
        replaced: ``FileExistsError``)."""
        with open(path, "xb") as f:
            f.write(self.data)

    def __repr__(self) -> str:
        return f"<fastvision.Image {self.title} ({len(self.data)} bytes of PNG)>"


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where HTML progress displays)."""
    try:
        from IPython import get_ipython  # type: ignore
    except ImportError:
        return False
    try:
        from ipykernel.zmqshell import ZMQInteractiveShell  # type: ignore
    except ImportError:
        return False
    return isinstance(get_ipython(), ZMQInteractiveShell)  # Jupyter, Colab (a subclass)
