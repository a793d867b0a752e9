"""Checks every policy brief must pass, shared by the tests of each kind of output folder.

`render(folder)` runs `caresim report` on the folder and returns the parsed brief;
`check_common` checks what every brief owes its reader (alt text, embedded figures, no
external references, provenance, assumptions with sources); `in_chromium` opens the HTML in
headless Chromium (console errors, requests, a screenshot of the first page, PDF printing).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from caresim.cli import app
from caresim.report.numbers import MINUS, parse_number, rounding_step

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "outputs" / "review"
SOURCE_ID = re.compile(r"\b(?:[RS]\d{3}|dfe:[a-z_]+(?:\.csv)?)\b|assumption [a-z0-9_]+")


@dataclass
class Parsed:
    """What a test needs from brief.html."""

    html: str
    headlines: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    footer: dict[str, str] = field(default_factory=dict)
    markdown: str = ""


class _Parser(HTMLParser):
    def __init__(self, parsed: Parsed):
        super().__init__(convert_charrefs=True)
        self.p = parsed
        self.stack: list[tuple[str, dict]] = []
        self.head: dict | None = None
        self.grab: str | None = None
        self.table: list[list[str]] | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.in_footer = False
        self.dt: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "li" and "data-metric" in a:
            self.head = {**{k[5:]: v for k, v in a.items() if k.startswith("data-")}, "text": []}
        elif self.head is not None and tag in ("strong", "span") and a.get("class") in ("estimate", "low", "high"):
            self.grab = a["class"]
            self.head[self.grab] = ""
        elif tag == "img":
            self.p.images.append(a)
        elif tag == "table":
            self.table = []
        elif tag == "tr" and self.table is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag == "footer":
            self.in_footer = True
        elif tag in ("dt", "dd", "h2") and (self.in_footer or tag == "h2"):
            self.text = []
        self.stack.append((tag, a))

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
        if tag == "li" and self.head is not None:
            self.head["text"] = " ".join("".join(self.head["text"]).split())
            self.p.headlines.append(self.head)
            self.head = None
        elif tag in ("strong", "span") and self.grab:
            self.grab = None
        elif tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.table.append(self.row)
            self.row = None
        elif tag == "table" and self.table is not None:
            self.p.tables.append(self.table)
            self.table = None
        elif tag == "h2":
            self.p.sections.append("".join(self.text).strip())
        elif tag == "dt" and self.in_footer:
            self.dt = "".join(self.text).strip()
        elif tag == "dd" and self.in_footer and self.dt:
            self.p.footer[self.dt] = "".join(self.text).strip()

    def handle_data(self, data):
        if self.head is not None:
            self.head["text"].append(data)
            if self.grab:
                self.head[self.grab] += data
        if self.cell is not None:
            self.cell.append(data)
        self.text.append(data)


def render(folder: Path) -> Parsed:
    r = CliRunner().invoke(app, ["report", str(folder)])
    assert r.exit_code == 0, r.output
    html = (folder / "brief.html").read_text()
    parsed = Parsed(html)
    _Parser(parsed).feed(html)
    parsed.markdown = (folder / "brief.md").read_text()
    return parsed


def agrees(text: str, value: float, low: float | None, high: float | None, unit: str) -> bool:
    """The number as printed equals `value` rounded as the brief's rule says: within half a
    rounding step, and the step is no coarser than a tenth of the interval (or three
    significant figures)."""
    step = rounding_step(value, low, high, unit)
    if low is not None and high is not None and high > low:
        three_figures = 10.0 ** (math.floor(math.log10(abs(value))) - 2) if value else 0.0
        assert step <= max((high - low) / 10, three_figures, 1.0), (text, step)
    return abs(parse_number(text) - value) <= step / 2 + 1e-9 * max(1.0, abs(value))


def check_headline(h: dict, row, unit: str, scale: float = 1.0) -> None:
    """A headline's estimate and interval equal the CSV row's mean, p05 and p95."""
    mean, lo, hi = (scale * float(row[c]) for c in ("mean", "p05", "p95"))
    assert agrees(h["estimate"], mean, lo, hi, unit), (h, mean)
    assert agrees(h["low"], lo, lo, hi, unit), (h, lo)
    assert agrees(h["high"], hi, lo, hi, unit), (h, hi)


def check_common(p: Parsed, folder: Path) -> None:
    """Alt text on every figure, figures embedded, nothing fetched, provenance in the footer,
    intervals beside the headline numbers, Markdown mirrors the headlines."""
    assert p.headlines, "a brief leads with its headline numbers"
    for img in p.images:
        assert img["src"].startswith("data:image/png;base64,"), img["src"][:40]
        assert len(img.get("alt", "")) > 40 and re.search(r"\d", img["alt"]), img.get("alt")
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", p.html)
    assert "url(" not in p.html and "<script" not in p.html and "@import" not in p.html
    for key in ("caresim version", "seed", "regenerate with"):
        assert p.footer.get(key), (key, p.footer)
    for h in p.headlines:
        assert h["estimate"].strip(), h
        assert h["text"].split(":")[0] in p.markdown, h["text"]
        assert h["estimate"] in p.markdown
    assert "Methods" in p.sections and "Provenance" in p.sections
    for item in ("1.1 Purpose", "1.3 Experimentation aims", "2.2 Base model logic",
                 "2.5 Components", "3.4 Assumptions", "4.1 Initialisation", "4.3 Estimation approach",
                 "5.2 Random sampling", "6 Code access"):
        assert item in p.html, item
    for h in p.headlines:  # negative numbers carry the typographic minus, never a hyphen
        for key in ("estimate", "low", "high"):
            text = h.get(key)
            if text:
                assert not re.search(r"(?<![\w])-[£\d]", text), (key, text)
                assert (parse_number(text) < 0) == text.startswith(MINUS), (key, text)


def assumptions_listed(p: Parsed, assumptions: dict, require_source: bool) -> list[list[str]]:
    """Every differing parameter block of the manifest is a row of an assumptions table, with
    its value and its evidence; with `require_source`, every row names a source id or a
    named assumption."""
    tables = [t for t in p.tables if t and t[0][:2] == ["parameter", "value"]]
    rows = {r[0]: r for t in tables for r in t[1:]}
    for a in assumptions["rows"]:
        row = rows.get(a["path"])
        assert row is not None, f"{a['path']} missing from the assumptions table"
        for src in a["sources"]:
            assert src in row[4], (a["path"], src, row)
        if a.get("assumption"):
            assert a["assumption"] in row[4], (a["path"], row)
        if require_source:
            assert SOURCE_ID.search(row[4]), (a["path"], row)
    return list(rows.values())


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def in_chromium(browser, html: Path, name: str) -> dict:
    """Open `html` in headless Chromium: no console errors or warnings, no page errors, no
    request but the file itself and its data: figures; save a screenshot of the first page
    (outputs/review/<name>.png) and print to PDF (A4). Returns what it saw."""
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    messages, requests = [], []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html.resolve().as_uri(), wait_until="load")
    broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
    REVIEW.mkdir(parents=True, exist_ok=True)
    shot = REVIEW / f"{name}.png"
    page.screenshot(path=str(shot))
    pdf = page.pdf(format="A4", print_background=True)
    page.close()
    external = [u for u in requests if not u.startswith(("data:", html.resolve().as_uri()))]
    assert messages == [], messages
    assert external == [], external
    assert broken == 0
    assert shot.stat().st_size > 20_000
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page") >= 2, len(pdf)
    (REVIEW / f"{name}.pdf").write_bytes(pdf)
    return {"screenshot": shot, "pdf_bytes": len(pdf)}
