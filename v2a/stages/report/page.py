"""The report's HTML: plain semantic tables and figures, inline CSS, and one small optional sorting script."""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from v2a import __version__
from v2a.metrics import specs
from v2a.stages.report.runs import ClipAsset, RunData

GENERATOR_TAG = "v2a listening report"
# The rows about the run itself, after the metric table's rows.
_RUN_ROWS = {"gen_time_s": "generation time per sample (s)", "trainable_params_m": "trainable parameters (M)"}


def metric_order() -> tuple[str, ...]:
    """The metrics in the table's order (the real audio's CS next to CS), then the rows about the run."""
    return (*specs.row_order(), *_RUN_ROWS)


def metric_name(key: str) -> str:
    return _RUN_ROWS.get(key) or specs.label(key)


def _title(key: str) -> str:
    """A paper column's title: the metric's label and its direction."""
    return f"{specs.label(key)} {'↓' if specs.lower_is_better(key) else '↑'}"


@dataclass
class Plot:
    src: str
    alt: str
    caption: str


def mean_or_none(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _missing(value) -> bool:
    # numpy float32 NaN is not a Python float, so isinstance(value, float) alone misses it.
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(float(value)))


def format_value(value) -> str:
    """How a number appears on the page (the tests read cells back through this)."""
    if _missing(value):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if value != 0 and abs(value) >= 1000:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _url(rel: str) -> str:
    return quote(rel.replace(os.sep, "/"))


def _num_cell(value, attrs: str = "", interval=None) -> str:
    """A number's cell; with `interval` (low, high), its 95 % bootstrap interval after it. Sorting reads the value."""
    data = "" if _missing(value) else repr(float(value))
    text = _e(format_value(value))
    if interval is not None and not _missing(value) and not any(_missing(v) for v in interval):
        text += (f' <span class="ci" title="95% bootstrap interval over clips">'
                 f"[{_e(format_value(interval[0]))}, {_e(format_value(interval[1]))}]</span>")
    return f'<td class="num" data-value="{_e(data)}"{attrs}>{text}</td>'


def _interval_of(frame, metric):
    """(ci_low, ci_high) of a metric in a frame of results rows indexed by metric, or None."""
    if frame is None or metric not in frame.index or "ci_low" not in frame.columns:
        return None
    return frame.loc[metric, "ci_low"], frame.loc[metric, "ci_high"]


def _plain(value) -> str:
    if value is None or (np.isscalar(value) and not isinstance(value, str) and pd.isna(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        # Settings are stored as float32: six significant digits print 0.9, not 0.8999999761581421.
        return f"{float(value):.6g}"
    return str(value)


def config_rows(run: RunData, runs_root: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(field, value)]) of one run, from the generations table, its results rows and config.json."""
    g, first = run.generations, run.first
    gen = [
        ("clips generated", str(g["clip_id"].nunique())),
        ("samples per clip", str(int(g["sample"].max()) + 1)),
        ("conditioning", first["conditioning"]),
        ("mapper", _plain(first["mapper_kind"])),
        ("mapper checkpoint id", _plain(first["mapper_checkpoint_id"])),
        ("aggregator", _plain(first["aggregator"])),
        ("mapper guidance scale", _plain(first["mapper_guidance"])),
        ("mapper sampling steps", _plain(first["mapper_steps"])),
        ("generator", first["generator_id"]),
        ("generator guidance scale", _plain(first["generator_guidance"])),
        ("generator steps", _plain(first["generator_steps"])),
        ("scheduler", first["scheduler"]),
        ("seconds of audio", _plain(first["seconds"])),
        ("sample rate (Hz)", str(int(first["sample_rate"]))),
        ("mean generation time per sample (s)", format_value(float(g["gen_time_s"].mean()))),
    ]
    groups = [("Generation (generations table)", gen)]
    m = run.metrics
    if not m.empty:
        last = m.sort_values("created_at").iloc[-1]
        by_extractor: dict[str, list[str]] = {}
        for name, ext in zip(m["metric"], m["extractor"]):
            if isinstance(ext, str) and ext:
                by_extractor.setdefault(ext, []).append(name)
        extractors = sorted(f"{', '.join(sorted(names))}: {ext}" for ext, names in by_extractor.items())
        groups.append(("Evaluation (results rows)", [
            ("dataset", last["dataset"]), ("split", last["split"]),
            ("clips evaluated", _clip_count(m)),
            ("clip seconds scored", _plain(last["clip_seconds"])),
            ("extractors", "; ".join(extractors) or "—"),
            ("clip id list sha256", str(last["id_list_sha256"])[:16] + "…"),
            ("evaluated at (UTC)", pd.Timestamp(last["created_at"]).strftime("%Y-%m-%d %H:%M:%S")),
            ("v2a version", last["v2a_version"]),
        ]))
    c = run.mapper_config
    if c is not None:
        training = c.get("training", {})
        meta = c.get("metadata", {})
        objective = c.get("objective") or {}
        where = run.mapper_dir.replace(os.sep, "/")
        root = runs_root.replace(os.sep, "/").rstrip("/") + "/"
        rows = [
            ("checkpoint folder", where[len(root):] if where.startswith(root) else where),
            ("weights match the run's checkpoint", "yes" if run.mapper_exact else
             "no: this folder has been trained again since the run"),
            ("name", _plain(c.get("name"))), ("kind", _plain(c.get("kind"))), ("architecture", _plain(c.get("arch"))),
            ("depth", _plain(c.get("depth"))), ("expansion", _plain(c.get("expansion"))),
            ("trainable parameters", _plain(c.get("trainable_params"))),
            ("aggregator (training)", _plain(c.get("aggregator"))),
        ]
        if objective:
            rows.append(("objective", ", ".join(f"{k} {objective[k]}" for k in
                                                ("prediction", "schedule", "sampler", "num_timesteps")
                                                if k in objective)))
        rows += [("epochs", _plain(training.get("epochs_completed", training.get("epochs")))),
                 ("batch size", _plain(training.get("batch_size"))), ("learning rate", _plain(training.get("lr"))),
                 ("training / validation pairs",
                  f"{_plain(meta.get('n_train', training.get('train_pairs')))} / "
                  f"{_plain(meta.get('n_val', training.get('val_pairs')))}"),
                 ("CLIP model", _plain(meta.get("clip_model_id"))), ("CLAP model", _plain(meta.get("clap_model_id")))]
        groups.append(("Mapper (config.json)", rows))
    return groups


def _clip_count(metrics: pd.DataFrame) -> str:
    """Clips scored, and samples where a clip has several: the rows count samples for FD / FAD / CS."""
    counts = metrics["n_clips"].astype(int)
    # gen_time_s is counted per clip; the per-metric rows count samples, so the smallest count is per clip.
    per_clip = int(counts[metrics["metric"] == "gen_time_s"].max()) if (metrics["metric"] == "gen_time_s").any() \
        else int(counts.min())
    samples = int(counts.max())
    return f"{per_clip} ({samples} samples)" if samples != per_clip else str(per_clip)


def _table_wrap(label: str, table: str) -> str:
    # A focusable scroll region lets keyboard users scroll a table wider than the screen.
    return f'<div class="scroll" role="region" aria-label="{_e(label)}" tabindex="0">{table}</div>'


def render_config(runs: list[RunData], runs_root: str) -> str:
    """One table per source (generations table, results rows, config.json), a column per run."""
    per_run = [dict((g, dict(rows)) for g, rows in config_rows(r, runs_root)) for r in runs]
    group_order: list[str] = []
    fields: dict[str, list[str]] = {}
    for run_groups in per_run:
        for g, rows in run_groups.items():
            if g not in fields:
                group_order.append(g)
                fields[g] = []
            fields[g] += [f for f in rows if f not in fields[g]]
    several = len(runs) > 1
    head = "".join(f'<th scope="col">{_e(r.run_id)}</th>' for r in runs)
    if several:
        head += '<th scope="col">differs</th>'
    tables_html = []
    for i, g in enumerate(group_order):
        body = []
        for f in fields[g]:
            values = [rg.get(g, {}).get(f, "—") for rg in per_run]
            differs = several and len(set(values)) > 1
            cells = "".join(f"<td>{_e(v)}</td>" for v in values)
            # Said in words as well as colour, for readers who cannot tell the highlight apart.
            mark = f'<td>{"differs" if differs else ""}</td>' if several else ""
            row_class = ' class="differs"' if differs else ""
            body.append(f'<tr{row_class}><th scope="row">{_e(f)}</th>{cells}{mark}</tr>')
        tables_html.append(
            f'<table class="config" id="config-{i}"><caption>{_e(g)}</caption><thead><tr><th scope="col">setting</th>'
            f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
    lead = ("<p>Read from each run's generations table, its results rows and the mapper checkpoint it used; rows "
            "whose values differ between the runs are marked <em>differs</em>.</p>" if several else
            "<p>Read from the run's generations table, its results rows and the mapper checkpoint it used.</p>")
    return lead + f'<div class="config-tables">{"".join(_table_wrap(g, t) for g, t in zip(group_order, tables_html))}</div>'


def _protocol_note(runs: list[RunData]) -> str:
    from v2a.metrics.paper import PAPER, PROTOCOL

    paper = (f"Rows marked <strong>quoted from the paper</strong> are copied from {_e(PAPER)}, Table 1, not "
             f"measured here. Their protocol: {_e(PROTOCOL['dataset'])} {_e(PROTOCOL['split'])} set, "
             f"{PROTOCOL['n_clips']:,} clips of {PROTOCOL['cs']['clip_seconds']:g} s at "
             f"{PROTOCOL['cs']['sample_rate'] // 1000} kHz; FD on {_e(PROTOCOL['fd']['extractor'])} embeddings, FAD on "
             f"{_e(PROTOCOL['fad']['extractor'])}, CS = 100 × cosine(CLIP image embedding, Wav2CLIP audio "
             "embedding); every model with its released weights. Its seconds per sample time the whole pipeline on "
             "one RTX A6000; this run's time is the generator alone on this run's device.")
    ours = []
    random_weights = False
    for run in runs:
        m = run.metrics
        if m.empty:
            ours.append(f"Run {_e(run.run_id)} has no results rows yet: run <code>v2a evaluate</code> on it.")
            continue
        last = m.iloc[-1]
        ids = sorted({x for x in m["extractor"] if isinstance(x, str) and x})
        random_weights |= any("random" in x for x in ids)
        ours.append(f"Run {_e(run.run_id)}: {_e(last['dataset'])} {_e(last['split'])} split, "
                    f"{_clip_count(m)} clips of {_plain(last['clip_seconds'])} s at "
                    f"{_plain(last['sample_rate'])} Hz; extractors {_e(', '.join(ids) or '—')}.")
    parts = [f"<p>{paper}</p>", *(f"<p>{o}</p>" for o in ours),
             "<p>Measured and quoted numbers compare only where dataset, split, clip length and extractor weights "
             "all match.</p>"]
    if random_weights:
        parts.append('<p class="warning"><strong>Random weights.</strong> This run\'s extractors have random '
                     "weights (a test profile): its numbers check that the pipeline runs, they say nothing about "
                     "audio quality.</p>")
    return f'<div class="note">{"".join(parts)}</div>'


def render_metrics(runs: list[RunData]) -> str:
    from v2a.metrics.paper import table_rows

    cols = [("fd", _title("fd")), ("fad", _title("fad")), ("cs", _title("cs")), ("imagehear_cs", "ImageHear CS ↑"),
            ("seconds_per_sample", "seconds per sample"), ("trainable_params_m", "trainable parameters (M)")]
    head = "".join(f'<th scope="col">{_e(t)}</th>' for _, t in cols)
    measured = []
    for run in runs:
        params = (run.mapper_config or {}).get("trainable_params")
        values = {"fd": run.metric("fd"), "fad": run.metric("fad"), "cs": run.metric("cs"), "imagehear_cs": None,
                  "seconds_per_sample": run.metric("gen_time_s"),
                  "trainable_params_m": params / 1e6 if params is not None else run.metric("trainable_params_m")}
        by = run.metrics.set_index("metric") if not run.metrics.empty else None
        cells = "".join(_num_cell(values[k], f' data-run="{_e(run.run_id)}" data-metric="{k}"', _interval_of(by, k))
                        for k, _ in cols)
        measured.append(f'<tr class="measured"><th scope="row">{_e(run.run_id)}</th><td>measured: this run</td>'
                        f"{cells}</tr>")
        ref = run.metric("cs_reference")
        if ref is not None:
            cells = "".join(_num_cell(ref if k == "cs" else None,
                                      f' data-run="{_e(run.run_id)}" data-metric="cs_reference"' if k == "cs" else "",
                                      _interval_of(by, "cs_reference") if k == "cs" else None)
                            for k, _ in cols)
            measured.append(f'<tr class="measured"><th scope="row">{_e(run.run_id)}: real audio</th>'
                            f"<td>measured: the real audio of this run's clips</td>{cells}</tr>")
    quoted = []
    for row in table_rows("table1"):
        cells = "".join(_num_cell(row[k]) for k, _ in cols)
        quoted.append(f'<tr class="quoted"><th scope="row">{_e(row["method"])}</th>'
                      f"<td>quoted from the paper (Table 1)</td>{cells}</tr>")
    n = len(cols) + 2
    table = (f'<table id="metrics-table"><caption>Metrics of {"these runs" if len(runs) > 1 else "this run"} next to '
             "the paper's Table 1 (↓ lower is better, ↑ higher is better)</caption>"
             f'<thead><tr><th scope="col">method</th><th scope="col">source</th>{head}</tr></thead>'
             f'<tbody><tr><th scope="rowgroup" colspan="{n}" class="group">Measured</th></tr>{"".join(measured)}'
             f'</tbody><tbody><tr><th scope="rowgroup" colspan="{n}" class="group">Quoted from the paper '
             f'(V2A-Mapper, AAAI 2024, Table 1)</th></tr>{"".join(quoted)}</tbody></table>')
    return (_table_wrap("Metrics next to the paper", table) + _protocol_note(runs) + render_mmaudio(runs)
            + _render_metric_rows(runs))


def render_mmaudio(runs: list[RunData]) -> str:
    """MMAudio's VGGSound columns: each run's av-benchmark rows next to MMAudio's published ones."""
    from v2a.metrics.mmaudio import COLUMNS, NOT_VERIFIED_NOTE, SOURCE, VERIFIED, quoted_rows

    head = "".join(f'<th scope="col">{_e(t)}</th>' for t, _ in COLUMNS)
    measured = []
    for run in runs:
        m = run.av_benchmark
        if m is None or m.empty:
            continue
        by = m.set_index("metric")
        seconds = _plain(by["clip_seconds"].dropna().iloc[0]) if by["clip_seconds"].notna().any() else "-"
        cells = "".join(_num_cell(float(by.loc[k, "value"]) if k and k in by.index else None,
                                  f' data-run="{_e(run.run_id)}" data-metric="{k}@av-benchmark"' if k else "",
                                  _interval_of(by, k) if k else None)
                        for _, k in COLUMNS)
        measured.append(f'<tr class="measured"><th scope="row">{_e(run.run_id)}</th>'
                        f"<td>measured: this run, av-benchmark protocol, {_e(seconds)}-s clips</td>{cells}</tr>")
    quoted = "".join(f'<tr class="quoted"><th scope="row">{_e(r["method"])}</th><td>quoted: {_e(SOURCE)}</td>'
                     + "".join(_num_cell(r[t]) for t, _ in COLUMNS) + "</tr>" for r in quoted_rows())
    n = len(COLUMNS) + 2
    note = ("" if VERIFIED else f"<p><strong>The quoted rows are {_e(NOT_VERIFIED_NOTE)}.</strong></p>")
    mine = ("".join(measured) if measured else
            f'<tr><td colspan="{n}">No run here was evaluated under the av-benchmark protocol '
            "(<code>v2a evaluate --protocol av-benchmark</code>).</td></tr>")
    table = ('<table id="mmaudio-table"><caption>MMAudio\'s VGGSound columns, in its order</caption>'
             f'<thead><tr><th scope="col">method</th><th scope="col">source</th>{head}</tr></thead>'
             f'<tbody><tr><th scope="rowgroup" colspan="{n}" class="group">Measured</th></tr>{mine}</tbody>'
             f'<tbody><tr><th scope="rowgroup" colspan="{n}" class="group">Quoted ({_e(SOURCE)})</th></tr>'
             f"{quoted}</tbody></table>")
    return ("<h3>Next to MMAudio's table</h3>" + _table_wrap("Next to MMAudio's table", table) + note
            + "<p>Protocol of the quoted rows: av-benchmark, VGGSound test, 8-s clips, released extractor weights. "
              "Measured rows compare with them only under the same protocol, clips and weights.</p>")


def _render_metric_rows(runs: list[RunData]) -> str:
    rows = []
    for run in runs:
        # The paper protocol's rows as before; av-benchmark's after them, marked by protocol.
        m = pd.concat([f for f in (run.metrics, run.av_benchmark) if f is not None and not f.empty])\
            if not (run.metrics.empty and (run.av_benchmark is None or run.av_benchmark.empty)) else run.metrics
        if m.empty:
            continue
        order = {k: i for i, k in enumerate(metric_order())}
        for _, r in sorted(m.iterrows(), key=lambda x: (str(x[1].get("protocol") or "v2a-mapper") != "v2a-mapper",
                                                         order.get(x[1]["metric"], 99))):
            name = metric_name(r["metric"])
            key = r["metric"]
            if str(r.get("protocol") or "v2a-mapper") != "v2a-mapper":
                name, key = f"{name} ({r['protocol']})", f"{key}@{r['protocol']}"
            attrs = f' data-run="{_e(run.run_id)}" data-metric="{_e(key)}"'
            interval = (r.get("ci_low"), r.get("ci_high")) if "ci_low" in r else None
            rows.append(f'<tr><th scope="row">{_e(run.run_id)}</th><td>{_e(name)}</td>'
                        f'{_num_cell(r["value"], attrs, interval)}'
                        f'<td>{_e(_plain(r["extractor"]))}</td><td class="num">{_e(_plain(r["sample_rate"]))}</td>'
                        f'<td class="num">{_e(_plain(r["clip_seconds"]))}</td><td class="num">{int(r["n_clips"])}</td>'
                        "</tr>")
    if not rows:
        return ""
    table = ('<table id="metric-rows" data-sortable><caption>Every results row (the newest per metric), with the '
             'extractor that produced it; [low, high]: its 95 % bootstrap interval over clips</caption><thead><tr><th scope="col" data-sort>run</th>'
             '<th scope="col" data-sort>metric</th><th scope="col" data-sort>value</th><th scope="col">extractor</th>'
             '<th scope="col">sample rate (Hz)</th><th scope="col">clip seconds</th><th scope="col">clips</th>'
             f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return "<h3>All metric rows</h3>" + _table_wrap("All metric rows", table)


def render_plots(plots: list[Plot]) -> str:
    if not plots:
        return "<p>No plots in this run folder (no <code>reports/*.png</code>, no mapper training curve).</p>"
    figs = "".join(f'<figure><img src="{_url(p.src)}" alt="{_e(p.alt)}" loading="eager">'
                   f"<figcaption>{_e(p.caption)}</figcaption></figure>" for p in plots)
    return f'<div class="plots">{figs}</div>'


def _describe(a: ClipAsset) -> str:
    return f"clip {a.clip_id}" + (f" ({a.label})" if a.label else "")


def _visual_cell(a: ClipAsset, with_video: bool, width: int = 160) -> str:
    if a.poster is None:
        return "<td>no visual input found</td>"
    if a.kind == "video":
        alt = f"Frame at {a.poster_time:.1f} s of the input video, {_describe(a)}"
    else:
        alt = f"Input image, {_describe(a)}"
    parts = [f'<img class="poster" src="{_url(a.poster)}" alt="{_e(alt)}" width="{width}">']
    if with_video and a.video:
        parts.append(f'<details><summary>Video with the generated soundtrack</summary>'
                     f'<video controls preload="metadata" width="240" src="{_url(a.video)}" '
                     f'aria-label="{_e("Input video with generated sound, " + _describe(a))}"></video></details>')
    return f'<td>{"".join(parts)}</td>'


def _audio_block(wav: str, mel: str, what: str, short: str, cs: float | None) -> str:
    """A player, its mel spectrogram and a download link; the full description goes to assistive labels."""
    score = f'<p class="cs">CS {_e(format_value(cs))}</p>' if cs is not None else ""
    return (f'<figure class="sound"><audio controls preload="metadata" src="{_url(wav)}" '
            f'aria-label="{_e(what)}"></audio>'
            f'<img class="mel" src="{_url(mel)}" alt="{_e("Mel spectrogram of " + what)}" width="220">'
            f'<figcaption>{_e(short)} · <a href="{_url(wav)}" aria-label="{_e("download " + what)}">wav</a>'
            f"</figcaption>{score}</figure>")


def _samples_cell(run: RunData, a: ClipAsset) -> str:
    samples = run.samples.get(a.clip_id, [])
    if not samples:
        return "<td>—</td>"
    blocks = "".join(_audio_block(s.wav, s.mel, f"generated sample {s.sample}, run {run.run_id}, {_describe(a)}",
                                  f"sample {s.sample}", s.cs if len(samples) > 1 else None) for s in samples)
    return f"<td>{blocks}</td>"


def _reference_cell(a: ClipAsset) -> str:
    if a.reference_wav is None:
        return "<td>no real audio (an image or a silent video)</td>"
    return (f"<td>{_audio_block(a.reference_wav, a.reference_mel, 'real audio, ' + _describe(a), 'real audio', None)}"
            "</td>")


def _clip_header(a: ClipAsset, with_label: bool = False) -> str:
    extra = " · ".join(x for x in (a.kind, a.split and f"{a.split} split") if x)
    label = f'<br><span class="label">{_e(a.label)}</span>' if with_label and a.label else ""
    return (f'<th scope="row" data-value="{_e(a.clip_id)}"><span class="clip-id">{_e(a.clip_id)}</span>{label}'
            f'<br><span class="meta">{_e(extra)}</span></th>')


def render_clips(run: RunData, clips: list[ClipAsset], cs_model: str | None) -> str:
    rows = []
    for a in clips:
        cs = mean_or_none([s.cs for s in run.samples.get(a.clip_id, [])])
        generated = _num_cell(cs, ' data-cs="generated"')
        reference = _num_cell(a.reference_cs, ' data-cs="reference"')
        rows.append(f'<tr data-clip="{_e(a.clip_id)}">{_clip_header(a)}<td>{_e(a.label or "—")}</td>'
                    f"{_visual_cell(a, True)}{_samples_cell(run, a)}{generated}{_reference_cell(a)}{reference}</tr>")
    cs_note = (f"CS is scored per clip as the run's CS metric is (100 × cosine of each CLIP frame embedding with the "
               f"Wav2CLIP embedding of the audio, averaged over frames), with {_e(cs_model)}."
               if cs_model else "CS columns are blank: give a model profile (<code>--profile</code>) to score clips.")
    table = ('<table id="clips-table" data-sortable><caption>Sampled clips of run '
             f"{_e(run.run_id)}: input, generated audio and real audio</caption><thead><tr>"
             '<th scope="col" data-sort>clip</th><th scope="col" data-sort>label</th><th scope="col">visual input</th>'
             '<th scope="col">generated audio</th><th scope="col" data-sort>CS (generated)</th>'
             '<th scope="col">real audio</th><th scope="col" data-sort>CS (real audio)</th></tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table>')
    return f'<p>{cs_note}</p>' + _table_wrap("Sampled clips", table)


def render_comparison(runs: list[RunData], clips: list[ClipAsset]) -> str:
    present = [k for k in metric_order() if any(r.metric(k) is not None for r in runs)]
    head = "".join(f'<th scope="col">{_e(r.run_id)}</th>' for r in runs)
    mrows = "".join(f'<tr><th scope="row">{_e(metric_name(k))}'
                    f'{" ↓" if specs.lower_is_better(k) else ""}</th>'
                    + "".join(_num_cell(r.metric(k), f' data-run="{_e(r.run_id)}" data-metric="{k}"') for r in runs)
                    + "</tr>" for k in present)
    metrics = (f'<table id="compare-metrics"><caption>Metrics side by side</caption><thead><tr>'
               f'<th scope="col">metric</th>{head}</tr></thead><tbody>{mrows}</tbody></table>')
    rows = []
    for a in clips:
        cells = "".join(_samples_cell(r, a) + _num_cell(mean_or_none([s.cs for s in r.samples.get(a.clip_id, [])]),
                                                        f' data-run="{_e(r.run_id)}" data-cs="generated"')
                        for r in runs)
        # Narrower than the run's own table: the label joins the clip cell and posters shrink, so that two
        # runs fit a laptop screen without scrolling sideways.
        rows.append(f'<tr data-clip="{_e(a.clip_id)}">{_clip_header(a, with_label=True)}'
                    f"{_visual_cell(a, False, width=120)}{_reference_cell(a)}{cells}</tr>")
    run_heads = "".join(f'<th scope="col">{_e(r.run_id)}</th><th scope="col" data-sort>CS ({_e(r.run_id)})</th>'
                        for r in runs)
    table = ('<table id="compare-clips" data-sortable><caption>The same clips in every run</caption><thead><tr>'
             '<th scope="col" data-sort>clip</th><th scope="col">visual input</th>'
             f'<th scope="col">real audio</th>{run_heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return (_table_wrap("Metrics side by side", metrics)
            + "<p>Settings that differ between the runs are marked in the configuration table above.</p>"
            + _table_wrap("The same clips in every run", table))


STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #fff;
       margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 90rem; }
h1 { font-size: 1.6rem; margin: .5rem 0; } h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 2px solid #333; }
h3 { font-size: 1.05rem; }
a { color: #0a4fb5; } a:focus, button:focus, summary:focus, .scroll:focus, audio:focus, video:focus {
  outline: 3px solid #b35900; outline-offset: 2px; }
nav ul { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; padding: 0; list-style: none; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #8a8a8a; padding: .3rem .5rem; text-align: left; vertical-align: top; }
thead th { background: #e8e8e8; }
th.group { background: #f3f3f3; font-style: italic; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.quoted td, tr.quoted th { background: #f7f4ea; }
tr.differs th, tr.differs td { background: #fff3cd; }
.scroll { overflow-x: auto; }
.config-tables { display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
table.config td { max-width: 26rem; overflow-wrap: anywhere; }
.note { border-left: 4px solid #555; padding: .1rem .8rem; background: #f6f6f6; max-width: 60rem; }
.warning { color: #7a2200; }
.meta, figcaption { color: #444; font-size: .85rem; }
.clip-id { font-family: ui-monospace, monospace; font-size: .9rem; }
span.label { font-weight: normal; }
figure { margin: 0 0 .6rem; } figure.sound { width: 224px; }
audio { width: 220px; display: block; }
img.mel, img.poster { display: block; border: 1px solid #ccc; height: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; }
.plots img { max-width: min(640px, 100%); height: auto; border: 1px solid #ccc; }
.cs { margin: .1rem 0; font-size: .85rem; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer;
            color: inherit; text-decoration: underline dotted; }
th[aria-sort="ascending"] button::after { content: " ▲"; } th[aria-sort="descending"] button::after { content: " ▼"; }
"""

# Progressive enhancement: the tables are complete without it; it only turns header labels into sort buttons.
SORT_SCRIPT = """
document.querySelectorAll('table[data-sortable] thead th[data-sort]').forEach(function (th) {
  var button = document.createElement('button');
  button.type = 'button';
  button.textContent = th.textContent;
  th.textContent = '';
  th.appendChild(button);
  button.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th[aria-sort]').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    function key(row) {
      var cell = row.cells[col], raw = cell.hasAttribute('data-value') ? cell.getAttribute('data-value')
                                                                       : cell.textContent.trim();
      if (raw === '' || raw === '—') return null;
      var n = Number(raw);
      return isNaN(n) ? raw : n;
    }
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null || y === null) return (x === null) - (y === null);  // blanks last either way
      var order = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def render_page(runs_root: str, runs: list[RunData], clips: list[ClipAsset], plots: list[Plot], n_clips: int,
                seed: int, cs_model: str | None) -> str:
    ids = ", ".join(r.run_id for r in runs)
    several = len(runs) > 1
    title = f"Listening report: {'runs' if several else 'run'} {ids}"
    sections = [
        ("configuration", "Configuration and protocol", render_config(runs, runs_root)),
        ("metrics", "Metrics", render_metrics(runs)),
        ("plots", "Plots", render_plots(plots)),
        ("clips", f"Clips of run {runs[0].run_id}", render_clips(runs[0], clips, cs_model)),
    ]
    if several:
        sections.append(("compare", "Runs side by side", render_comparison(runs, clips)))
    nav = "".join(f'<li><a href="#{k}">{_e(t)}</a></li>' for k, t, _ in sections)
    body = "".join(f'<section id="{k}" aria-labelledby="{k}-h"><h2 id="{k}-h">{_e(t)}</h2>{content}</section>'
                   for k, t, content in sections)
    labels = len({a.label for a in clips})
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    intro = (f"{len(clips)} clip{'s' if len(clips) != 1 else ''} (at most {n_clips}, spread over {labels} "
             f"label{'s' if labels != 1 else ''}, seed {seed}){' generated in every run' if several else ''}, "
             f"from <code>{_e(runs_root)}</code>. Written {stamp} by v2a {_e(__version__)}.")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR_TAG} {_e(__version__)}">
<title>{_e(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{_e(title)}</h1>
<p>{intro}</p>
<nav aria-label="Sections"><ul>{nav}</ul></nav>
</header>
<main>
{body}
</main>
<script>{SORT_SCRIPT}</script>
</body>
</html>
"""


def markdown_summary(summary: dict) -> str:
    """The report at a glance, as Markdown a browser shows whole (a Prefect artifact): where the page is,
    the runs' metrics and the first clips' poster and mel spectrograms, embedded."""
    from v2a.core.markdown import inline_png, location

    index = summary["index"]
    how = ("open it in a browser on the machine that ran the flow (the folder holds everything the page "
           "links to: it can be copied or zipped as it is)")
    lines = [f"# Listening report: {', '.join(summary['runs'])}", "",
             location(index, "the page", how=how), "",
             f"{len(summary['clips'])} clips: {', '.join(summary['clips'])}", ""]
    headline = ("fd", "fad", "cs")  # the paper's Table 1 columns
    lines += ["| run | " + " | ".join(specs.label(k) for k in headline) + " |", "|---|---|---|---|"]
    for run_id, values in summary["metrics"].items():
        lines.append(f"| {run_id} | " + " | ".join(format_value(values.get(k)) for k in headline) + " |")
    folder = summary.get("out") or index.rsplit("/", 1)[0]
    for clip in summary.get("headline") or []:
        lines += ["", f"### {clip['clip_id']}" + (f" ({clip['label']})" if clip.get("label") else ""), ""]
        pictures = [("visual input", clip.get("poster")), ("real audio", clip.get("reference_mel")),
                    *((f"{run_id}, sample 0", mel) for run_id, mel in (clip.get("mels") or {}).items())]
        for caption, rel in pictures:
            image = inline_png(_in_folder(folder, rel), caption) if rel else None
            if image:
                lines += [f"**{caption}**", "", image, ""]
    return "\n".join(lines)


def _in_folder(folder: str, rel: str) -> str:
    return f"{folder.rstrip('/')}/{rel}" if "://" in folder else str(Path(folder, rel))
