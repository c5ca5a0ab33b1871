"""Training progress as fastai shows it: a live bar and a table of epochs, as HTML in a Jupyter
notebook and as text in a terminal (what fastprogress does). The engine calls these hooks."""

from __future__ import annotations

import html
import json
import sys
import time
from typing import Any, Dict, List, Optional

from ._display import in_notebook

#: Metric columns in fastai's order (the engine's names), shown when an epoch has them.
COLUMNS = ["train_loss", "valid_loss", "accuracy", "error_rate", "rmse"]


def _fmt_time(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m:02d}:{s:02d}"


class Progress:
    """Receives a fit's events from the engine and shows them.

    ``show=False`` keeps quiet; ``notes`` (what the engine tells the user: a batch size it
    chose, weights it loaded) are kept in :attr:`notes` and shown too. Rows of the epoch table
    are kept in :attr:`rows` (dicts of the engine's metrics).
    """

    def __init__(self, show: bool = True) -> None:
        self.show = show
        self.html = show and in_notebook()
        # A live bar only where it redraws in place (a terminal); logs get the table alone.
        self.bar = show and not self.html and sys.stderr.isatty()
        self.rows: List[Dict[str, Any]] = []
        self.notes: List[str] = []
        self.n_epochs = 0
        self.per_epoch = 0
        self.n_iter = 0
        self.start = time.monotonic()
        self._handle: Any = None
        self._loss: Optional[float] = None
        self._iter = 0

    # Hooks the engine calls.
    def before_fit(self, n_epochs: int, iters_per_epoch: int, n_iter: int) -> None:
        """A fit of ``n_epochs`` epochs of ``iters_per_epoch`` batches starts, ``n_iter`` batches
        in all (fewer than their product when the last epoch ends part-way)."""
        self.n_epochs, self.per_epoch, self.n_iter = n_epochs, iters_per_epoch, n_iter
        self.start = time.monotonic()
        self._render()

    def after_batch(self, iteration: int, loss: float) -> None:
        """Training reached ``iteration`` (of the fit) with this batch ``loss`` (at most five
        calls a second)."""
        self._iter, self._loss = iteration, loss
        self._render()

    def after_epoch(self, metrics: str) -> None:
        """An epoch ended; ``metrics`` is its row as JSON (train_loss, valid_loss, accuracy…)."""
        self.rows.append(json.loads(metrics))
        if not self.html and self.show:
            self._clear_bar()
            if len(self.rows) == 1:
                print("  ".join(self._header()), file=sys.stdout)
            print("  ".join(self._cells(self.rows[-1])), file=sys.stdout, flush=True)
        self._render()

    def after_fit(self) -> None:
        """The fit ended (finished, stopped or cancelled)."""
        self._render(final=True)
        self._clear_bar()

    def note(self, text: str) -> None:
        """Something the user should know (a batch size chosen, weights loaded, a plan)."""
        self.notes.append(text)
        if self.show and not self.html:
            self._clear_bar()
            print(text, file=sys.stderr, flush=True)
        elif self.html:
            self._render()

    # Rendering.
    def _clear_bar(self) -> None:
        if self.bar:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def _columns(self) -> List[str]:
        names = ["epoch"]
        for key in COLUMNS:
            if any(r.get(key) is not None for r in self.rows):
                names.append(key)
        return names + ["time"]

    def _header(self) -> List[str]:
        return [f"{c:>10}" for c in self._columns()]

    def _cells(self, row: Dict[str, Any]) -> List[str]:
        out = []
        for c in self._columns():
            if c == "epoch":
                out.append(f"{row['epoch']:>10}")
            elif c == "time":
                out.append(f"{_fmt_time(row['seconds']):>10}")
            else:
                v = row.get(c)
                out.append(f"{'' if v is None else format(v, '.6f'):>10}")
        return out

    def _bar(self) -> str:
        total = max(1, self.n_iter)
        done = min(self._iter, total)
        pct = 100.0 * done / total
        elapsed = time.monotonic() - self.start
        loss = "" if self._loss is None else f" loss {self._loss:.4f}"
        return f"{pct:5.1f}% [{done}/{total} {_fmt_time(elapsed)}]{loss}"

    def _render(self, final: bool = False) -> None:
        if not self.show:
            return
        if not self.html:
            if self.bar and not final and self.per_epoch:
                sys.stderr.write("\r" + self._bar() + "\x1b[K")
                sys.stderr.flush()
            return
        from IPython.display import HTML, display  # type: ignore

        cols = self._columns()
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{c.strip()}</td>" for c in self._cells(r)) + "</tr>"
            for r in self.rows
        )
        total = max(1, self.n_iter)
        bar = (
            f'<progress value="{min(self._iter, total)}" max="{total}" style="width:300px"></progress>'
            f" {self._bar()}"
        )
        notes = "".join(f"<div><small>{html.escape(n)}</small></div>" for n in self.notes)
        html = f'{notes}<div>{bar}</div><table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        if self._handle is None:
            self._handle = display(HTML(html), display_id=True)
        else:
            self._handle.update(HTML(html))
