"""The output folder of a run, and the deterministic writers of its files.

A run writes into a staging folder beside its final folder and only swaps it into place
when it has finished, so an interrupted or failed run never leaves half an output folder
and never damages the previous one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from caresim.errors import CaresimError


def runtime_manifest() -> dict:
    """Where a command ran, for its manifest (STRESS-DES 5.4, system specification)."""
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}


def _safe_name(name: str) -> str:
    """A scenario name usable as one folder name (no separators, no leading dots)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")
    return cleaned or "scenario"


def _is_non_empty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


class OutputFolder:
    """Context manager for one run's output folder.

    The final folder is `out`, or `root/<scenario_name>/<YYYYmmdd-HHMMSS>` (local time)
    when `out` is None; if that timestamped folder is already taken, `-2`, `-3`, ... is
    appended. On enter, a non-empty final folder raises `CaresimError` unless `force`.
    Files are written into `.path`, a staging folder `.<name>.partial-<random>` beside the
    final one. On a clean exit the staging folder becomes `.final` (with `force` the old
    content is removed only at that moment); on an exception it is deleted and the old
    folder is left exactly as it was.
    """

    def __init__(
        self,
        out: Path | str | None,
        scenario_name: str,
        force: bool = False,
        root: Path | str = Path("outputs"),
    ) -> None:
        self.force = force
        if out is not None:
            final = Path(os.path.abspath(Path(out).expanduser()))
        else:
            parent = Path(os.path.abspath(Path(root).expanduser())) / _safe_name(scenario_name)
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            final, n = parent / stamp, 1
            while final.exists():
                n += 1
                final = parent / f"{stamp}-{n}"
        self.final: Path = final
        self._staging: Path | None = None

    @property
    def path(self) -> Path:
        """The staging folder to write into (only inside the `with` block)."""
        if self._staging is None:
            raise RuntimeError("OutputFolder.path is only available inside its `with` block")
        return self._staging

    def _check_final(self) -> None:
        final = self.final
        cwd = Path.cwd().resolve()
        resolved = final.resolve()
        if resolved == Path(resolved.anchor) or resolved == cwd or resolved in cwd.parents:
            raise CaresimError(
                f"refusing to use {final} as an output folder: it contains the current "
                "folder; choose another folder with --out"
            )
        if final.exists() and not final.is_dir():
            raise CaresimError(f"output path {final} exists and is not a folder; choose --out")
        if _is_non_empty_dir(final) and not self.force:
            raise CaresimError(
                f"output folder {final} is not empty: pass --force to replace it, "
                "or choose another folder with --out"
            )

    def __enter__(self) -> OutputFolder:
        self._check_final()
        parent = self.final.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            while True:
                staging = parent / f".{self.final.name}.partial-{secrets.token_hex(4)}"
                try:
                    staging.mkdir()  # honours the umask, unlike tempfile.mkdtemp (0700)
                    break
                except FileExistsError:
                    continue
        except OSError as exc:
            raise CaresimError(f"cannot create output folder in {parent}: {exc}") from exc
        self._staging = staging
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        staging, self._staging = self._staging, None
        assert staging is not None
        if exc_type is not None:
            shutil.rmtree(staging, ignore_errors=True)
            return
        if _is_non_empty_dir(self.final) and not self.force:
            # Something was written there while we ran: keep the results, say where.
            raise CaresimError(
                f"output folder {self.final} was filled by something else during the run; "
                f"this run's results are in {staging}"
            )
        try:
            self._swap_in(staging)
        except OSError as exc:
            raise CaresimError(
                f"cannot move the results into {self.final}: {exc}; they are in {staging}"
            ) from exc

    def _swap_in(self, staging: Path) -> None:
        final = self.final
        if not final.exists():
            staging.rename(final)
            return
        # Move the old folder aside, swap, then delete it: the final path is never
        # left missing if the swap fails.
        aside = final.parent / f".{final.name}.old-{secrets.token_hex(4)}"
        final.rename(aside)
        try:
            staging.rename(final)
        except BaseException:
            aside.rename(final)
            raise
        shutil.rmtree(aside, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"manifest value of type {type(value).__name__} is not JSON-serialisable")


def write_manifest(folder: Path | str, manifest: dict[str, Any]) -> Path:
    """Write `manifest` to `folder/manifest.json` (UTF-8, indent 2, sorted keys, final
    newline). Paths, numpy scalars and arrays, sets and dates are converted. Returns the
    file's path."""
    path = Path(folder) / "manifest.json"
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def write_parquet(df: pd.DataFrame, path: Path | str) -> Path:
    """Write `df` to Parquet with pyarrow, deterministically: no pandas index, no pandas
    schema metadata (it embeds the pandas version), zstd compression, rows in the given
    order. Parquet stores no write timestamp. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd")
    return path
