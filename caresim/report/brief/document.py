"""The brief as a document: sections of paragraphs, tables and figures, rendered twice
(HTML and Markdown) by `caresim.report.brief.render`. Builders only fill these in; they
never write HTML or Markdown themselves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from caresim.report.numbers import Estimate


@dataclass
class Table:
    """A table of already formatted cells; `numeric` columns are right-aligned."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: frozenset[int] = frozenset()
    note: str = ""


@dataclass
class Figure:
    """A PNG from the output folder (`path`, relative to it), with alt text describing its data."""

    path: Path
    relative: str
    alt: str
    caption: str


@dataclass
class Bullets:
    items: list[str]


Block = Union[str, Table, Figure, Bullets]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    def add(self, *blocks: Block) -> "Section":
        self.blocks.extend(b for b in blocks if b is not None)
        return self


@dataclass
class Headline:
    """One headline number: `label` (what, where, when) and its rounded `estimate`; `table`,
    `metric`, `year`, `geography` and `columns` say which row of which CSV it came from."""

    label: str
    estimate: Estimate
    table: str
    metric: str
    year: int | str
    geography: str
    scenario: str | None = None

    @property
    def text(self) -> str:
        return f"{self.label}: {self.estimate.text}"


@dataclass
class Brief:
    kind: str
    title: str
    question: str
    what: list[str]
    headlines: list[Headline]
    headline_note: str
    sections: list[Section]
    provenance: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)
