"""A report to share: one self-contained HTML file (crops inlined, plotly.js inlined once) that opens offline.

It holds what a stakeholder asks first: the headline metrics, accuracy by label length and (for plates) by
province, the worst slices, the most confused pairs and their matrix, the 24 worst samples with their crops
and character diffs, the robustness curves when they were computed (``ocr_core.robustness``), and, given a
second frame of the same images, the comparison.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ocr_core.analysis import (EPSILON, accuracy_by, aligned_pairs, compare_frames, confusion_table, edit_table,
                               is_plate_domain, rank_worst, top_confusions)
from ocr_core.atomic import atomic_path
from ocr_core.data.sources import load_crop, sample_from_filename
from ocr_core.data.synth import FONT_PATH
from ocr_core.errors import InputError
from ocr_core.score import summarize
from ocr_core.slices import find_worst_slices

WORST_SAMPLES = 24
CROP_WIDTH = 240
_DIFF_COLOURS = {"substitution": "#fde68a", "insertion": "#bfdbfe", "deletion": "#fecaca"}
# The plate glyphs' subset font travels inside the report (12 KB), so its Chinese glyphs render on a machine
# with no CJK font installed; an installed one is preferred.
_GLYPH_FONT = "PlateLens Plate Glyphs"
_FONT_FAMILY = f'"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC","Microsoft YaHei","{_GLYPH_FONT}",sans-serif'
_PLOT_FONT = f"Noto Sans CJK SC, {_GLYPH_FONT}, sans-serif"
_STYLE = "body{font-family:" + _FONT_FAMILY + """;margin:24px;
color:#111827;max-width:1400px}
h1{margin-bottom:0}.sub{color:#6b7280;margin-top:4px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:left}
th{background:#f9fafb}.metrics td{font-size:1.3em;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}.card{border:1px solid #e5e7eb;border-radius:8px;
padding:8px}.card img{width:100%;image-rendering:auto}.diff span{display:inline-block;min-width:1.1em;
text-align:center;font-family:monospace;font-size:1.1em}.small{color:#6b7280;font-size:.85em}
"""


def _font_face() -> str:
    """The plate glyphs' font as an inline @font-face rule."""
    data = base64.b64encode(FONT_PATH.read_bytes()).decode()
    # CJK only: the subset also holds the plates' Latin letters and digits, which must not replace the text font's.
    return (f'@font-face{{font-family:"{_GLYPH_FONT}";src:url(data:font/otf;base64,{data}) format("opentype");'
            "unicode-range:U+2E80-9FFF}")


def _crop_data_url(path: str) -> str:
    """A crop as an inline PNG (a grey tile where the file cannot be read any more)."""
    try:
        crop = load_crop(sample_from_filename(Path(path)))
    except InputError:
        crop = np.full((24, 94, 3), 200, np.uint8)
    height = max(1, round(crop.shape[0] * CROP_WIDTH / max(1, crop.shape[1])))
    crop = cv2.resize(crop, (CROP_WIDTH, height), interpolation=cv2.INTER_CUBIC)
    ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode() if ok else ""


def _diff(label: str, pred: str) -> str:
    rows = {"true": [], "pred": []}
    for kind, true, read in aligned_pairs(label, pred):
        colour = _DIFF_COLOURS.get(kind, "transparent")
        rows["true"].append(f'<span style="background:{colour}">{html.escape(true)}</span>')
        rows["pred"].append(f'<span style="background:{colour}">{html.escape(read)}</span>')
    return "".join(f'<div class="diff"><span class="small">{side}</span> {"".join(cells)}</div>'
                   for side, cells in rows.items())


def _table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    return frame.to_html(index=False, escape=True, formatters={k: v.format for k, v in (formats or {}).items()},
                         border=0)


def _metrics(frame: pd.DataFrame) -> str:
    summary = summarize(frame)
    confidence = "n/a" if np.isnan(summary.mean_confidence) else f"{summary.mean_confidence:.3f}"
    return ('<table class="metrics"><tr><th>samples</th><th>accuracy</th><th>CER</th><th>mean confidence</th></tr>'
            f"<tr><td>{summary.n:,}</td><td>{summary.accuracy:.2%}</td><td>{summary.cer:.4f}</td>"
            f"<td>{confidence}</td></tr></table>")


def _matrix(frame: pd.DataFrame, edits: pd.DataFrame, pairs: pd.DataFrame) -> str:
    involved = sorted({c for t, p in zip(pairs["true"], pairs["pred"]) for c in (t, p)})
    if not involved:
        return ""
    counts = confusion_table(frame, edits)
    keep = [c for c in involved if c in counts.index]
    table = counts.loc[keep, keep].copy()
    values = table.to_numpy().astype(float)
    np.fill_diagonal(values, np.nan)  # the diagonal (correct reads) would drown the errors
    figure = go.Figure(go.Heatmap(z=values, x=[str(c) for c in table.columns], y=[str(c) for c in table.index],
                                  colorscale="Reds", hovertemplate="%{y} read as %{x}: %{z}<extra></extra>"))
    figure.update_layout(height=420, width=520, margin={"l": 40, "r": 10, "t": 10, "b": 40},
                         xaxis_title="read as", yaxis_title="true", yaxis_autorange="reversed",
                         font_family=_PLOT_FONT)
    return figure.to_html(full_html=False, include_plotlyjs=True, div_id="confusion-matrix")


_CORRUPTION_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777")
_MODEL_DASHES = ("solid", "dash", "dot", "dashdot")


def robustness_figure(curves: pd.DataFrame) -> go.Figure:
    """CER against severity, one colour per corruption and, when ``curves`` holds a ``model`` column with
    several models, one line style per model (solid for the first)."""
    models = list(dict.fromkeys(curves["model"].astype(str))) if "model" in curves.columns else [""]
    corruptions = list(dict.fromkeys(curves["corruption"].astype(str)))
    figure = go.Figure()
    for m, model in enumerate(models):
        rows = curves if model == "" else curves[curves["model"].astype(str) == model]
        for c, corruption in enumerate(corruptions):
            line = rows[rows["corruption"].astype(str) == corruption].sort_values("severity")
            name = corruption if len(models) == 1 else f"{corruption} · {model}"
            figure.add_trace(go.Scatter(
                x=line["severity"], y=line["cer"], mode="lines+markers", name=name, legendgroup=model,
                line={"color": _CORRUPTION_COLOURS[c % len(_CORRUPTION_COLOURS)],
                      "dash": _MODEL_DASHES[m % len(_MODEL_DASHES)]},
                hovertemplate=f"{html.escape(name)}<br>severity %{{x:.2f}}<br>CER %{{y:.4f}}<extra></extra>"))
    figure.update_layout(height=420, margin={"l": 50, "r": 10, "t": 10, "b": 40},
                         xaxis_title="severity (0: the crops as they are)", yaxis_title="CER",
                         yaxis_rangemode="tozero", font_family=_PLOT_FONT)
    return figure


def _robustness(curves: pd.DataFrame, include_plotlyjs: bool) -> str:
    figure = robustness_figure(curves)
    figure.update_layout(width=900)
    models = list(dict.fromkeys(curves["model"].astype(str))) if "model" in curves.columns else []
    lines = " (solid: " + ", dashed: ".join(html.escape(m) for m in models[:2]) + ")" if len(models) > 1 else ""
    n = f" on {int(curves['n'].iloc[0]):,} crops" if "n" in curves.columns and len(curves) else ""
    return (f"<p>CER against the severity of each corruption{n}, every model reading the same corrupted crops"
            f"{lines}.</p>" + figure.to_html(full_html=False, include_plotlyjs=include_plotlyjs,
                                               div_id="robustness-curves"))


def build_report(frame: pd.DataFrame, title: str, source: str, dataset: str,
                 other: pd.DataFrame | None = None, other_source: str = "",
                 robustness: pd.DataFrame | None = None) -> str:
    """The report of a score frame as one HTML document (see the module doc); ``other`` adds a comparison,
    ``robustness`` (``ocr_core.robustness`` curves, with a ``model`` column for several models) its curves."""
    edits = edit_table(frame)
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="sub">{html.escape(source)} on {html.escape(dataset)} · '
             f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC · PlateLens</p>",
             "<h2>Headline</h2>", _metrics(frame)]
    if other is not None:
        joined = compare_frames(frame, other)
        counts = joined["change"].value_counts()
        parts += [f"<h2>Compared with {html.escape(other_source)}</h2>", _metrics(other),
                  "<p>" + " · ".join(f"<b>{counts.get(k, 0):,}</b> {k} by the second"
                                     for k in ("fixed", "broken")) + f" (of {len(joined):,} shared images)</p>"]
    by_length = accuracy_by(frame, "label_len")
    parts += ["<h2>Accuracy by label length</h2>", _table(by_length, {"accuracy": "{:.3f}", "cer": "{:.4f}"})]
    if is_plate_domain(frame["label"].astype(str).tolist()):
        provinces = accuracy_by(frame, "province").sort_values("accuracy", kind="stable")
        parts += ["<h2>Accuracy by province, worst first</h2>", _table(provinces, {"accuracy": "{:.3f}", "cer": "{:.4f}"})]
    slices = find_worst_slices(frame, top=10)
    parts.append("<h2>Worst slices</h2>")
    if slices.empty:
        parts.append("<p>No slice fails significantly more often than the whole.</p>")
    else:
        view = slices[["slice", "n", "errors", "error_rate", "lift"]]
        parts.append(_table(view, {"error_rate": "{:.1%}", "lift": "{:.1f}"}))
    pairs = top_confusions(edits, 15)
    parts.append("<h2>Most confused characters</h2>")
    if pairs.empty:
        parts.append("<p>No character is confused.</p>")
    else:
        view = pairs.assign(pair=[f"{t} → {p}" for t, p in zip(pairs["true"], pairs["pred"])])
        parts += [_table(view[["pair", "count", "samples", "kind"]]), _matrix(frame, edits, pairs),
                  f'<p class="small">{EPSILON} marks a missing character.</p>']
    worst = rank_worst(frame[~frame["correct"]]).head(WORST_SAMPLES)
    parts.append(f"<h2>The {len(worst)} worst samples</h2>")
    cards = [f'<div class="card"><img alt="{html.escape(str(row.label))}" src="{_crop_data_url(str(row.path))}">'
             f"{_diff(str(row.label), str(row.pred))}"
             f'<div class="small">CER {row.cer:.3f} · {html.escape(Path(str(row.path)).name)}</div></div>'
             for row in worst.itertuples()]
    parts.append('<div class="cards">' + "".join(cards) + "</div>" if cards else "<p>Every sample is read right.</p>")
    if robustness is not None and not robustness.empty:
        plotly_inlined = any('id="confusion-matrix"' in part for part in parts)
        parts += ["<h2>Robustness curves</h2>", _robustness(robustness, include_plotlyjs=not plotly_inlined)]
    body = "\n".join(parts)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_font_face()}{_STYLE}</style></head><body>{body}</body></html>")


def write_report(document: str, out: str | Path) -> Path:
    """Write the report atomically."""
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return out
