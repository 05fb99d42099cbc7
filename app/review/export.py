"""The cycle review as CSV, XLSX and Markdown: layouts of one `CycleReviewRead`, no figures of
their own (those come from `app.review.figures`)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from app.review.figures import FINAL_SCORES
from app.review.schemas import (
    CATEGORIES,
    CATEGORY_LABELS,
    FORMAT_LABELS,
    CycleReviewRead,
    ReviewKeyResult,
    ReviewObjective,
)
from app.review.service import band_of

NO_TEAM = "(no team)"
_STYLESHEET = Path(__file__).resolve().parent.parent / "web" / "static" / "krsync.css"
#: What the dashboard's stylesheet says when it can't be read (it always ships with krsync).
_FALLBACK_COLOURS = {
    "done": "#1d4ed8",
    "done-bg": "#dbe6fe",
    "on_track": "#15803d",
    "on_track-bg": "#dcf3e3",
    "at_risk": "#b45309",
    "at_risk-bg": "#fdecd0",
    "off_track": "#c0262d",
    "off_track-bg": "#fbdfe0",
    "no_data": "#6b7280",
    "no_data-bg": "#eceef1",
    "no_baseline": "#7c4dcc",
    "no_baseline-bg": "#ece4fa",
}
#: A score's band takes the colour of the status it reads like on the dashboard.
BAND_STATUS = {"0.7-1.0": "on_track", "0.4-0.6": "at_risk", "0.0-0.3": "off_track"}


def dashboard_colours() -> dict[str, str]:
    """The status colours of the dashboard, read from its stylesheet's custom properties, so a
    spreadsheet colours a status as the page does."""
    colours = dict(_FALLBACK_COLOURS)
    try:
        css = _STYLESHEET.read_text(encoding="utf-8")
    except OSError:
        return colours
    for name, value in re.findall(r"--([a-z_]+(?:-bg)?):\s*(#[0-9a-fA-F]{6})\s*;", css):
        if name in colours:
            colours[name] = value.lower()
    return colours


def score_status(score: float | None) -> str:
    return BAND_STATUS.get(band_of(score), "no_data")


# --- rows ------------------------------------------------------------------------------------

KR_COLUMNS: tuple[str, ...] = (
    "cycle",
    "objective_id",
    "objective",
    "level",
    "team",
    "objective_owner",
    "objective_score",
    "key_result_id",
    "key_result",
    "owner",
    "unit",
    "kind",
    "measured_by",
    "current_value",
    "start_value",
    "target_value",
    "progress",
    "score",
    "status",
    "stale",
    "findings",
    "carried_from_id",
    *(("final_score", "final_score_note") if FINAL_SCORES else ()),
)


def _rules_of(review: CycleReviewRead) -> dict[tuple[int, int | None], list[str]]:
    found: dict[tuple[int, int | None], list[str]] = {}
    for f in review.findings:
        found.setdefault((f.objective_id, f.key_result_id), []).append(f.rule)
    return found


def key_result_rows(review: CycleReviewRead) -> Iterator[dict[str, Any]]:
    """One row a key result; an objective without any gets one row with its own columns, so
    no objective is missing from a sheet."""
    rules = _rules_of(review)
    for obj in review.objectives:
        head = {
            "cycle": review.cycle.name,
            "objective_id": obj.id,
            "objective": obj.title,
            "level": obj.level,
            "team": obj.team,
            "objective_owner": obj.owner,
            "objective_score": obj.score,
        }
        if not obj.key_results:
            yield {**dict.fromkeys(KR_COLUMNS), **head, "findings": _joined(rules, obj.id, None)}
            continue
        for kr in obj.key_results:
            row = {
                **head,
                "key_result_id": kr.id,
                "key_result": kr.title,
                "owner": kr.owner,
                "unit": kr.unit,
                "kind": kr.kind,
                "measured_by": kr.measured_by,
                "current_value": kr.current_value,
                "start_value": kr.start_value,
                "target_value": kr.target_value,
                "progress": kr.progress,
                "score": kr.score,
                "status": kr.status,
                "stale": kr.stale,
                "findings": _joined(rules, obj.id, kr.id),
                "carried_from_id": kr.carried_from_id,
            }
            if FINAL_SCORES:
                row |= {"final_score": kr.final_score, "final_score_note": kr.final_score_note}
            yield row


def _joined(rules: dict[tuple[int, int | None], list[str]], obj: int, kr: int | None) -> str:
    return " ".join(rules.get((obj, kr), []))


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(review: CycleReviewRead) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(KR_COLUMNS)
    for row in key_result_rows(review):
        writer.writerow([_csv_cell(row[c]) for c in KR_COLUMNS])
    return buffer.getvalue()


# --- xlsx ------------------------------------------------------------------------------------

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_TEAM_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    # (heading, row key, number format)
    ("Objective", "objective", None),
    ("Level", "level", None),
    ("Objective owner", "objective_owner", None),
    ("Objective score", "objective_score", "0.0"),
    ("Key result", "key_result", None),
    ("Owner", "owner", None),
    ("Unit", "unit", None),
    ("Measured by", "measured_by", None),
    ("Current", "current_value", "#,##0.##"),
    ("Start", "start_value", "#,##0.##"),
    ("Target", "target_value", "#,##0.##"),
    ("Progress", "progress", "0%"),
    ("Score", "score", "0.0"),
    ("Status", "status", None),
    ("Findings", "findings", None),
    *(
        (("Final score", "final_score", "0.0"), ("Note", "final_score_note", None))
        if FINAL_SCORES
        else ()
    ),
)
_BOLD = Font(bold=True)
_SCORE_KEYS = ("score", "objective_score", "final_score")


def sheet_names(teams: list[str]) -> dict[str, str]:
    """Team -> a sheet name Excel takes: at most 31 characters, none of []:*?/\\, unique, and
    never "Summary"."""
    taken = {"summary"}
    names: dict[str, str] = {}
    for team in teams:
        base = _SHEET_FORBIDDEN.sub("-", team.strip() or NO_TEAM.strip("()").capitalize())
        base = base.strip("'")[:31] or "Team"
        name, n = base, 2
        while name.lower() in taken:
            suffix = f" ({n})"
            name = base[: 31 - len(suffix)] + suffix
            n += 1
        taken.add(name.lower())
        names[team] = name
    return names


def _fill(colour: str) -> PatternFill:
    rgb = colour.lstrip("#").upper()
    return PatternFill(fill_type="solid", start_color=rgb, end_color=rgb)


def _status_style(ws_cell: Any, status: str, colours: dict[str, str]) -> None:
    if f"{status}-bg" in colours:
        ws_cell.fill = _fill(colours[f"{status}-bg"])
        ws_cell.font = Font(color=colours[status].lstrip("#").upper(), bold=True)


def _header(ws: Worksheet, row: int, headings: list[str]) -> None:
    for col, heading in enumerate(headings, start=1):
        ws.cell(row=row, column=col, value=heading).font = _BOLD


def _widths(ws: Worksheet, widths: list[int]) -> None:
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width


def _team_sheet(ws: Worksheet, rows: list[dict[str, Any]], colours: dict[str, str]) -> None:
    _header(ws, 1, [h for h, _, _ in _TEAM_COLUMNS])
    ws.freeze_panes = "A2"
    for r, row in enumerate(rows, start=2):
        for c, (_, key, fmt) in enumerate(_TEAM_COLUMNS, start=1):
            value = row.get(key)
            cell = ws.cell(row=r, column=c, value=value if value != "" else None)
            if fmt and isinstance(value, int | float):
                cell.number_format = fmt
            if key in _SCORE_KEYS and (value is not None or key == "score"):
                _status_style(cell, score_status(value), colours)
            if key == "status" and value:
                _status_style(cell, str(value), colours)
    _widths(ws, [36, 10, 16, 10, 40, 16, 10, 12, 12, 12, 12, 10, 8, 12, 28, 10, 30])


def _summary_sheet(ws: Worksheet, review: CycleReviewRead, colours: dict[str, str]) -> None:
    stats = review.statistics
    c = review.cycle
    ws["A1"] = f"Review of {c.name}"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"{c.start_date} to {c.end_date}, as of {review.as_of}"
    row = 4

    def pair(label: str, value: Any, fmt: str | None = None) -> None:
        nonlocal row
        ws.cell(row=row, column=1, value=label).font = _BOLD
        cell = ws.cell(row=row, column=2, value=value)
        if fmt and isinstance(value, int | float):
            cell.number_format = fmt
        row += 1

    def table(
        title: str, headings: list[str], rows: list[list[Any]], fmts: list[str | None]
    ) -> list[int]:
        nonlocal row
        row += 1
        ws.cell(row=row, column=1, value=title).font = Font(bold=True, size=12)
        row += 1
        _header(ws, row, headings)
        row += 1
        written = []
        for values in rows:
            for col, (value, fmt) in enumerate(zip(values, fmts, strict=True), start=1):
                cell = ws.cell(row=row, column=col, value=value)
                if fmt and isinstance(value, int | float):
                    cell.number_format = fmt
            written.append(row)
            row += 1
        return written

    pair("Objectives", stats.objectives)
    pair("Key results", stats.key_results)
    pair("Average score", stats.average_score, "0.00")
    pair("Expected progress", review.expected_progress, "0%")
    pair("Fed by data", stats.fed_by_data)
    pair("Checked in by hand", stats.checked_in_by_hand)
    pair("Roll-ups", stats.rollups)
    pair("Not measured", stats.not_measured)
    pair("Share fed by data", stats.share_fed_by_data, "0%")
    pair("Average confidence", stats.average_confidence, "0.0")

    band_rows = table(
        "Score distribution",
        ["Band", "Key results"],
        [[b.band, b.key_results] for b in stats.score_bands],
        [None, "0"],
    )
    for r, band in zip(band_rows, stats.score_bands, strict=True):
        _status_style(ws.cell(row=r, column=1), BAND_STATUS.get(band.band, "no_data"), colours)
    status_rows = table(
        "By status",
        ["Status", "Key results"],
        [[s, n] for s, n in stats.by_status.items()],
        [None, "0"],
    )
    for r, status in zip(status_rows, stats.by_status, strict=True):
        _status_style(ws.cell(row=r, column=1), status, colours)
    team_rows = table(
        "By team",
        ["Team", "Objectives", "Key results", "Average score", "Average progress"],
        [
            [t.team or NO_TEAM, t.objectives, t.key_results, t.average_score, t.average_progress]
            for t in stats.by_team
        ],
        [None, "0", "0", "0.00", "0%"],
    )
    for r, team in zip(team_rows, stats.by_team, strict=True):
        _status_style(ws.cell(row=r, column=4), score_status(team.average_score), colours)
    table(
        "Confidence by week",
        ["Week of", "Check-ins", "Average confidence"],
        [[w.week_start, w.check_ins, w.average_confidence] for w in stats.confidence_by_week],
        ["yyyy-mm-dd", "0", "0.0"],
    )
    titles = _titles(review)
    table(
        "Quality findings",
        ["Severity", "Rule", "Objective", "Key result", "What to change"],
        [
            [
                f.severity,
                f.rule,
                titles[0].get(f.objective_id, ""),
                titles[1].get(f.key_result_id or 0, ""),
                f.message,
            ]
            for f in review.findings
        ],
        [None] * 5,
    )
    table(
        "Retrospective",
        ["Format", "Category", "Objective", "Entry", "Author"],
        [
            [
                FORMAT_LABELS.get(e.format, e.format),
                CATEGORY_LABELS.get(e.category, e.category),
                titles[0].get(e.objective_id or 0, ""),
                e.text,
                e.author,
            ]
            for e in review.retrospective
        ],
        [None] * 5,
    )
    _widths(ws, [26, 22, 36, 36, 60])
    for line in ws.iter_rows(min_row=1, max_row=row):
        for cell in line:
            cell.alignment = Alignment(vertical="top", wrap_text=(cell.column or 0) >= 3)


def _titles(review: CycleReviewRead) -> tuple[dict[int, str], dict[int, str]]:
    objectives = {o.id: o.title for o in review.objectives}
    krs = {kr.id: kr.title for o in review.objectives for kr in o.key_results}
    return objectives, krs


def to_xlsx(review: CycleReviewRead) -> bytes:
    """A "Summary" sheet, then a sheet a team (objectives of no team on "No team")."""
    colours = dashboard_colours()
    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = "Summary"
    _summary_sheet(summary, review, colours)
    by_team: dict[str, list[dict[str, Any]]] = {}
    for row in key_result_rows(review):
        by_team.setdefault(row["team"] or "", []).append(row)
    teams = sorted(by_team, key=lambda t: (t == "", t))  # objectives of no team last
    names = sheet_names(teams)
    for team in teams:
        _team_sheet(wb.create_sheet(names[team]), by_team[team], colours)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# --- markdown --------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """A table cell: pipes escaped, lines joined, so any wiki's Markdown keeps the table."""
    if text is None:
        return "—"
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _fig(value: float | None) -> str:
    if value is None:
        return "—"
    if value == int(value) and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(headings: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(headings), _row(["---"] * len(headings)), *(_row(r) for r in rows), ""]


def _kr_line(
    kr: ReviewKeyResult, rules: dict[tuple[int, int | None], list[str]], obj: ReviewObjective
) -> list[str]:
    unit = f" {kr.unit}" if kr.unit and kr.current_value is not None else ""
    cells = [
        _md(kr.title),
        _md(kr.owner or "—"),
        _md(_fig(kr.current_value) + unit),
        _md(_fig(kr.target_value)),
        _pct(kr.progress),
        _score(kr.score),
        kr.status.replace("_", " "),
        _md(", ".join(rules.get((obj.id, kr.id), [])) or "—"),
    ]
    if FINAL_SCORES:
        cells += [_score(kr.final_score), _md(kr.final_score_note or "—")]
    return cells


def to_markdown(review: CycleReviewRead) -> str:
    c = review.cycle
    stats = review.statistics
    rules = _rules_of(review)
    out = [
        f"# Review of {_md(c.name)}",
        "",
        f"{c.start_date} to {c.end_date}, as of {review.as_of}.",
        "",
        "## Summary",
        "",
        *_table(
            [
                "Objectives",
                "Key results",
                "Average score",
                "Fed by data",
                "Checked in by hand",
                "Average confidence",
            ],
            [
                [
                    str(stats.objectives),
                    str(stats.key_results),
                    _score(stats.average_score),
                    f"{stats.fed_by_data} ({_pct(stats.share_fed_by_data)})",
                    str(stats.checked_in_by_hand),
                    "—" if stats.average_confidence is None else f"{stats.average_confidence:.1f}",
                ]
            ],
        ),
        "### Score distribution",
        "",
        *_table(["Band", "Key results"], [[b.band, str(b.key_results)] for b in stats.score_bands]),
        "### By team",
        "",
        *_table(
            ["Team", "Objectives", "Key results", "Average score", "Average progress"],
            [
                [
                    _md(t.team or NO_TEAM),
                    str(t.objectives),
                    str(t.key_results),
                    _score(t.average_score),
                    _pct(t.average_progress),
                ]
                for t in stats.by_team
            ],
        ),
    ]
    if stats.confidence_by_week:
        out += [
            "### Confidence by week",
            "",
            *_table(
                ["Week of", "Check-ins", "Average confidence"],
                [
                    [str(w.week_start), str(w.check_ins), f"{w.average_confidence:.1f}"]
                    for w in stats.confidence_by_week
                ],
            ),
        ]
    out += ["## Objectives", ""]
    headings = [
        "Key result",
        "Owner",
        "Current",
        "Target",
        "Progress",
        "Score",
        "Status",
        "Findings",
    ]
    if FINAL_SCORES:
        headings += ["Final score", "Note"]
    for obj in review.objectives:
        who = " · ".join(x for x in (obj.level, obj.team, obj.owner) if x)
        out += [
            f"### {_md(obj.title)}",
            "",
            f"{_md(who)} — progress {_pct(obj.progress)}, score {_score(obj.score)}, "
            f"{obj.status.replace('_', ' ')}",
            "",
        ]
        if obj.key_results:
            out += _table(headings, [_kr_line(kr, rules, obj) for kr in obj.key_results])
        else:
            out += ["No key results.", ""]
    titles = _titles(review)
    out += ["## Quality findings", ""]
    if review.findings:
        out += _table(
            ["Severity", "Rule", "Objective", "Key result", "What to change"],
            [
                [
                    f.severity,
                    f.rule,
                    _md(titles[0].get(f.objective_id)),
                    _md(titles[1].get(f.key_result_id or 0, "—")),
                    _md(f.message),
                ]
                for f in review.findings
            ],
        )
    else:
        out += ["None: every objective follows the rules of OKR practice.", ""]
    out += ["## Retrospective", ""]
    if not review.retrospective:
        out += ["No entries yet.", ""]
    for fmt, categories in CATEGORIES.items():
        entries = [e for e in review.retrospective if e.format == fmt]
        if not entries:
            continue
        out += [f"### {FORMAT_LABELS[fmt]}", ""]
        for category in categories:
            items = [e for e in entries if e.category == category]
            if not items:
                continue
            out += [f"#### {CATEGORY_LABELS[category]}", ""]
            for e in items:
                about = f" ({_md(titles[0].get(e.objective_id or 0))})" if e.objective_id else ""
                out.append(f"- {_md(e.text)}{about} — {_md(e.author)}")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
