"""Render a `Brief` to one self-contained HTML file (styles inline, figures as data URIs,
no scripts, nothing fetched) and to Markdown (figures linked from the folder's `figures/`).

Text in the document may use two pieces of Markdown inline markup, `code` and **bold**;
the HTML renderer escapes everything else."""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from importlib import resources

import jinja2
from markupsafe import Markup, escape

import caresim
from caresim.report.brief.document import Brief, Bullets, Figure, Table

KIND_TEXT = {"run": "scenario projection", "compare": "comparison of two scenarios",
             "sweep": "sensitivity analysis", "trial": "virtual trial",
             "calibration": "calibration", "backtest": "backtest"}

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def inline(text: str) -> Markup:
    """Escape `text` for HTML, then turn `code` and **bold** into elements."""
    html = str(escape(str(text)))
    html = _CODE.sub(r"<code>\1</code>", html)
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    return Markup(html)


def data_uri(figure: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure.path.read_bytes()).decode("ascii")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("caresim.report.brief", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    env.filters["inline"] = inline
    env.filters["data_uri"] = data_uri
    return env


def to_html(brief: Brief) -> str:
    css = resources.files("caresim.report.brief").joinpath("templates/brief.css").read_text()
    return _environment().get_template("brief.html.j2").render(
        brief=brief, css=css, version=caresim.__version__, kind_text=KIND_TEXT[brief.kind])


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> list[str]:
    lines = []
    if t.caption:
        lines += [f"*{t.caption}*", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---:" if i in t.numeric else "---" for i in range(len(t.columns))) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    if t.note:
        lines += ["", t.note]
    return lines + [""]


def to_markdown(brief: Brief) -> str:
    out = [f"# {brief.title}", "", f"*caresim policy brief: {KIND_TEXT[brief.kind]}*", "",
           f"**{brief.question}**", ""]
    out += [f"- {line}" for line in brief.what] + [""]
    if brief.warnings:
        out += ["## Warnings from the run", ""] + [f"- {w}" for w in brief.warnings] + [""]
    if brief.headlines:
        out += ["## Headline numbers", ""]
        out += [f"- {h.label}: **{h.estimate.point_text}**"
                + (f" ({h.estimate.interval_name} {h.estimate.interval_text})" if h.estimate.low_text else "")
                for h in brief.headlines]
        out += ["", brief.headline_note, ""]
    for s in brief.sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, str):
                out += [b, ""]
            elif isinstance(b, Bullets):
                out += [f"- {item}" for item in b.items] + [""]
            elif isinstance(b, Figure):
                alt = b.alt.replace("[", "(").replace("]", ")")
                out += [f"![{alt}]({b.relative})", "", f"*{b.caption}*", ""]
            else:
                out += _md_table(b)
    out += ["## Provenance", "", "| | |", "|---|---|"]
    out += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in brief.provenance]
    return "\n".join(out) + "\n"
