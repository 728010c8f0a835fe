"""Human output of the CLI: progress on stderr, summaries, tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # imported lazily: the CLI starts without the pipeline's modules
    from osmose.hosts.report import IngestReport
    from osmose.v1.services_pb2 import SearchHit

__all__ = ["IngestProgress", "print_hits", "print_report", "print_stats"]

_err = Console(stderr=True, highlight=False)
# Pipes and logs get whole lines; a terminal wraps them itself.
_out = Console(highlight=False, soft_wrap=True)


class IngestProgress:
    """A progress bar over files, with the stage each in-flight file is in. Quiet when
    stderr is not a terminal (CI logs, pipes)."""

    def __init__(self, files: list[Path], *, enabled: bool = True) -> None:
        self.files = files
        self.enabled = enabled and _err.is_terminal
        self.console = _err if self.enabled else _out
        self._active: dict[int, str] = {}
        self._progress = Progress(
            TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=_err, transient=True,
        ) if self.enabled else None
        self._task: TaskID | None = None

    def __enter__(self) -> IngestProgress:
        if self._progress:
            self._progress.start()
            self._task = self._progress.add_task("", total=len(self.files))
            self.console = self._progress.console
        else:
            self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    def update(self, index: int, stage: str) -> None:
        if not self._progress or self._task is None:
            return
        if stage == "done":
            self._active.pop(index, None)
            self._progress.advance(self._task)
        else:
            self._active[index] = stage
        desc = "  ".join(f"{self.files[i].name} [dim]{s}[/]" for i, s in sorted(self._active.items()))
        self._progress.update(self._task, description=desc)


def print_report(report: IngestReport) -> str:
    name = escape(Path(report.file).name)
    if report.status != "ok":
        lines = [f"[red]✗[/] {name}: [red]{escape(report.error or 'failed')}[/]"]
    else:
        unit = "pages" if report.file.lower().endswith(".pdf") else "slides"
        total = report.seconds.get("total", 0.0)
        lines = [
            f"[green]✓[/] [bold]{name}[/]  tier [cyan]{report.tier}[/] ({escape(report.tier_reason)})"
            f"  lang {report.language or '?'}",
            f"    {report.slides} {unit} · {report.segments} segment{'s' if report.segments != 1 else ''} · "
            f"{report.concepts} concepts · "
            f"{report.relations} relations · {report.chunks} chunks ({report.embedded} embedded) · "
            f"{report.vision_slides} for vision · {total:.1f} s",
        ]
    lines.extend(f"    [yellow]warning:[/] {escape(w)}" for w in report.warnings[:10])
    if len(report.warnings) > 10:
        lines.append(f"    [yellow]… {len(report.warnings) - 10} more warnings[/]")
    return "\n".join(lines)


def print_hits(query: str, hits: Sequence[SearchHit]) -> None:
    if not hits:
        _out.print(f"no results for {escape(query)!r}")
        return
    for rank, hit in enumerate(hits, 1):
        where = "page" if hit.file.lower().endswith(".pdf") else "slide"
        text = " ".join(hit.text.split())
        _out.print(f"[bold]{rank}. {escape(hit.file)}[/] {where} {hit.slide}  [dim]score {hit.score:.4f}[/]")
        _out.print(f"   {escape(text[:300])}{'…' if len(text) > 300 else ''}")
        if hit.concepts:
            _out.print(f"   [cyan]concepts:[/] {escape(', '.join(hit.concepts))}")
        related = getattr(hit, "related", None) or []
        if related:
            shown = []
            for r in related[:5]:
                where = ", ".join(f"{s.file} {s.slide}" for s in r.slides[:2])
                shown.append(f"{r.name} (via {r.via}{'; ' + where if where else ''})")
            _out.print(f"   [magenta]related:[/] {escape(' · '.join(shown))}")


def print_stats(table: dict[str, dict[str, int]], data_dir: str | Path) -> None:
    if not table:
        _out.print(f"no documents in {data_dir}")
        return
    columns = ["documents", "slides", "segments", "concepts", "relations", "chunks"]
    view = Table(title=f"osmose data in {data_dir}")
    view.add_column("tenant")
    for c in columns:
        view.add_column(c, justify="right")
    for tenant, counts in table.items():
        view.add_row(escape(tenant), *(str(counts[c]) for c in columns))
    _out.print(view)
