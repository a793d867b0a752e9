"""The policy brief: `caresim report OUTDIR` turns any output folder (run, compare, sweep,
trial, calibrate, backtest) into `brief.html` (one self-contained file) and `brief.md`.

    build_brief(folder) -> Brief          what the brief says (caresim.report.brief.kinds)
    write_brief(folder, formats) -> paths  renders and writes it (caresim.report.brief.render)

Numbers are rounded by `caresim.report.numbers`; assumptions come from the manifest's
`assumptions` (caresim.scenario.differences). The files are written atomically (a temporary
file renamed into place), so a failed report never leaves half a brief.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from caresim.errors import CaresimError
from caresim.report.brief.common import open_folder
from caresim.report.brief.document import Brief
from caresim.report.brief.kinds import BUILDERS
from caresim.report.brief.render import to_html, to_markdown

FORMATS = ("html", "md")


def build_brief(folder: Path | str) -> Brief:
    f = open_folder(Path(folder))
    return BUILDERS[f.kind](f)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary file (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_brief(folder: Path | str, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write `brief.html` and/or `brief.md` into `folder`; returns the paths written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise CaresimError(f"--format {unknown[0]!r}: choose html or md")
    folder = Path(folder)
    brief = build_brief(folder)
    texts = {"html": to_html(brief) if "html" in formats else None,
             "md": to_markdown(brief) if "md" in formats else None}
    written = []
    for fmt in FORMATS:
        if texts[fmt] is not None:
            path = folder / f"brief.{fmt}"
            _write_atomic(path, texts[fmt])
            written.append(path)
    return written
