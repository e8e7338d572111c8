"""The listening report: a static page per run, checked as a reader's browser sees it."""

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from storage_schemas import clips as clips_schema
from tests.browser import HeadlessChromium, find_chromium
from v2a.mapper.settings import TrainConfig
from v2a.stages import embed, evaluate, generate, ingest, report, train
from v2a.stages.report.page import format_value
from v2a.io import parquet
from v2a.io.embeddings import read_embeddings
from v2a.runtime.model_cache import empty_text_embedding, get_mapper, get_model

MAPPED, PLAIN = "mapped", "no-mapper"


def _generate(root: Path, run_id: str, conditioning: str, samples: int, checkpoint: Path | None) -> None:
    rows = read_embeddings(str(root / "embeddings"), split="test").to_dict("records")
    generator = get_model("tiny", "generator")
    mapper = get_mapper(str(checkpoint)) if checkpoint else None
    conditioner = generate.Conditioner(conditioning, generator, mapper, mapper_steps=5)
    generate.generate_clips(rows, str(root / "generations" / run_id), run_id, conditioner, generator,
                            empty_text_embedding("tiny"), samples=samples, seconds=1.0, steps=3, batch_size=4,
                            mapper_checkpoint_id=mapper.checkpoint_id if mapper else None,
                            mapper_kind=mapper.config.get("name") if mapper else None)


@pytest.fixture(scope="module")
def run_root(synth_dir, tmp_path_factory):
    """A pipeline output folder made by the real stages: two generation runs (the mapper ablation), evaluated."""
    root = tmp_path_factory.mktemp("report-run")
    ingest.ingest(str(root / "clips.parquet"), csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"),
                  dataset="synthetic")
    clips = parquet.read_table(str(root / "clips.parquet"), clips_schema.SCHEMA).to_pylist()
    clip_model, clap_model = get_model("tiny", "clip"), get_model("tiny", "clap")
    plans = embed.plan_shards([c["clip_id"] for c in clips], str(root / "embeddings"), str(root / "errors"), 16,
                              clip_model.model_id, clap_model.model_id, {"num_frames": 3})
    for plan in plans:
        embed.run_shard(plan, {c["clip_id"]: c for c in clips}, clip_model, clap_model, num_frames=3, max_seconds=2.0,
                        batch_size=16)
    checkpoint = root / "mappers" / "diff-mlp"
    train.train_stage(str(root / "embeddings"), str(checkpoint),
                      TrainConfig(mapper="diff-mlp", epochs=2, batch_size=8, val_sampling_steps=5), progress=False)
    _generate(root, MAPPED, "mapper", samples=2, checkpoint=checkpoint)
    _generate(root, PLAIN, "no-mapper", samples=1, checkpoint=None)
    extractors = {n: get_model("tiny", f"extractor:{n}") for n in ("panns", "vggish", "wav2clip")}
    for run_id in (MAPPED, PLAIN):
        evaluate.evaluate_run(str(root / "generations" / run_id), str(root), extractors, split="test",
                              dataset="synthetic")
    # The same run under MMAudio's protocol too (PaSST, ImageBind from the clips' frames).
    av = {n: get_model("tiny", f"extractor:{n}") for n in ("panns", "vggish", "passt", "imagebind")}
    evaluate.evaluate_run(str(root / "generations" / MAPPED), str(root), av, split="test", dataset="synthetic",
                          protocol="av-benchmark")
    # Stands in for the embed stage's domain-gap plot: any PNG under reports/ belongs on the page.
    (root / "reports").mkdir()
    Image.new("RGB", (40, 30), (20, 90, 160)).save(root / "reports" / "domain_gap.png")
    return root


@pytest.fixture(scope="module")
def built(run_root):
    return report.build_report(str(run_root), [MAPPED, PLAIN], out=str(run_root / "listening" / "ablation"),
                               cs_extractor=get_model("tiny", "extractor:wav2clip"), progress=False)


def _results(run_root: Path, run_id: str, protocol: str = "v2a-mapper") -> dict[str, float]:
    df = pd.read_parquet(run_root / "results")
    df = df[(df["run_id"] == run_id) & (df["protocol"] == protocol)]
    return dict(zip(df["metric"], df["value"]))


def _intervals(run_root: Path, run_id: str) -> dict[str, tuple[float, float]]:
    df = pd.read_parquet(run_root / "results")
    df = df[(df["run_id"] == run_id) & (df["protocol"] == "v2a-mapper")]
    return {m: (lo, hi) for m, lo, hi in zip(df["metric"], df["ci_low"], df["ci_high"])}


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [a[k] for k in ("src", "href", "poster") if a.get(k)]
        if tag == "img":
            self.images.append(a)


def test_stratified_sample_takes_turns_over_the_labels():
    labels = {f"a{i}": "a" for i in range(5)} | {"b0": "b", "b1": "b", "c0": "c"}
    chosen = report.stratified_sample(labels, 6, seed=3)
    counts = pd.Series([labels[c] for c in chosen]).value_counts().to_dict()
    assert counts == {"a": 3, "b": 2, "c": 1}
    assert chosen == report.stratified_sample(labels, 6, seed=3)
    assert len({labels[c] for c in report.stratified_sample(labels, 2, seed=0)}) == 2


def test_the_folder_is_self_contained(built):
    folder = Path(built["out"])
    parser = _References()
    parser.feed((folder / "index.html").read_text())
    local = [r for r in parser.refs if not r.startswith("#")]
    assert local, "the page links no assets"
    for ref in local:
        assert not urlparse(ref).scheme and not ref.startswith("/"), f"{ref} is not a relative link"
        assert (folder / unquote(ref)).is_file(), f"{ref} is missing from the report folder"
    assert all(img.get("alt") for img in parser.images)
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 5 * 2**20


def test_per_clip_cs_averages_to_the_runs_cs(built, run_root):
    # All test clips are on the page, so the per-clip scores must reproduce the CS row of the results table.
    assert len(built["clips"]) == 3
    for run_id in (MAPPED, PLAIN):
        per_clip = built["cs"][run_id]
        assert np.mean(list(per_clip.values())) == pytest.approx(_results(run_root, run_id)["cs"], rel=1e-4)


def test_paper_rows_are_marked_as_quoted_with_their_protocol(built):
    page = Path(built["index"]).read_text()
    assert page.count("quoted from the paper (Table 1)") == 4
    assert "15,446 clips of 10 s" in page and "Random weights." in page


def test_cs_is_blank_without_a_profile(run_root, tmp_path):
    summary = report.build_report(str(run_root), [PLAIN], out=str(tmp_path / "r"), clips=2, progress=False)
    page = Path(summary["index"]).read_text()
    assert all(v is None for v in summary["cs"][PLAIN].values())
    assert re.search(r'data-cs="generated">—</td>', page) and "--profile" in page


def test_a_folder_that_is_not_a_report_is_never_replaced(run_root, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a v2a report folder"):
        report.build_report(str(run_root), [PLAIN], out=str(tmp_path), clips=1, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_a_relative_runs_root_still_finds_the_mapper_and_its_plots(run_root, tmp_path, monkeypatch):
    monkeypatch.chdir(run_root.parent)
    summary = report.build_report(run_root.name, [MAPPED], out=str(tmp_path / "r"), clips=1, progress=False)
    page = Path(summary["index"]).read_text()
    assert "Mapper (config.json)" in page and "mappers/diff-mlp" in page
    assert {p.name for p in (tmp_path / "r" / "assets" / "plots").iterdir()} == {
        "reports-domain_gap.png", "training-curve-diff-mlp.png"}


def test_an_unknown_run_names_the_runs_there(run_root):
    with pytest.raises(FileNotFoundError, match=MAPPED):
        report.build_report(str(run_root), ["nope"], progress=False)


# Waits for every image and media element to settle, then reports each one; media that never fires
# an event within 10 s counts as broken.
MEDIA_CHECK = """(async () => {
  const settle = (el, ok) => new Promise(resolve => {
    const timer = setTimeout(() => resolve('timeout'), 10000);
    el.addEventListener(ok, () => { clearTimeout(timer); resolve('ok'); }, {once: true});
    el.addEventListener('error', () => { clearTimeout(timer); resolve('error'); }, {once: true});
  });
  const out = [];
  for (const img of document.images) {
    if (!img.complete) await settle(img, 'load');
    out.push({tag: 'img', src: img.getAttribute('src'), ok: img.naturalWidth > 0, alt: img.alt});
  }
  for (const m of document.querySelectorAll('audio, video')) {
    const state = m.readyState >= 1 ? 'ok' : (m.error ? 'error' : await settle(m, 'loadedmetadata'));
    out.push({tag: m.tagName.toLowerCase(), src: m.getAttribute('src'), ok: state === 'ok' && m.duration > 0,
              label: m.getAttribute('aria-label')});
  }
  const cells = {};
  document.querySelectorAll('#metrics-table td[data-metric]').forEach(td => {
    cells[td.dataset.run + '/' + td.dataset.metric] = td.textContent.trim();
  });
  const buttons = document.querySelectorAll('th[data-sort] button').length;
  return JSON.stringify({media: out, cells: cells, buttons: buttons,
                         clipRows: Array.from(document.querySelectorAll('#compare-clips tbody tr'),
                                              tr => tr.dataset.clip)});
})()"""


def test_page_loads_every_medium_and_shows_the_runs_metrics_in_chromium(built, run_root, tmp_path):
    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium here (make test installs Debian's chromium package)")
    index = Path(built["index"])
    shot = Path(os.environ.get("V2A_SCREENSHOT_DIR", tmp_path)) / "listening-report.png"
    with HeadlessChromium(binary) as browser:
        page = browser.new_page()
        page.navigate(index.as_uri())
        seen = json.loads(page.evaluate(MEDIA_CHECK))
        page.screenshot(shot, width=1280, height=2000)
        page.close()
    media = seen["media"]
    broken = [m for m in media if not m["ok"]]
    assert not broken, f"broken references: {broken}"
    # 3 clips: mapped run 2 samples, plain run 1, real audio, in the run's table and the comparison table.
    kinds = pd.Series([m["tag"] for m in media]).value_counts().to_dict()
    assert kinds["audio"] == 3 * (2 + 1) + 3 * (2 + 1 + 1) and kinds["video"] == 3
    assert kinds["img"] == kinds["audio"] + 3 * 2 + 2  # a mel per audio, posters twice, two plots
    assert all(m.get("alt") or m["tag"] != "img" for m in media)
    assert all(m.get("label") for m in media if m["tag"] != "img")
    for run_id in (MAPPED, PLAIN):
        measured = _results(run_root, run_id)
        intervals = _intervals(run_root, run_id)
        for metric in ("fd", "fad"):  # Fréchet rows: no interval without --bootstrap N
            assert seen["cells"][f"{run_id}/{metric}"] == report.format_value(measured[metric])
        for metric in ("cs", "cs_reference"):  # per-sample means: the value, then its 95 % interval
            low, high = intervals[metric]
            assert seen["cells"][f"{run_id}/{metric}"] == (f"{report.format_value(measured[metric])} "
                                                           f"[{report.format_value(low)}, {report.format_value(high)}]")
    assert seen["clipRows"] == built["clips"] and seen["buttons"] > 0
    assert shot.stat().st_size > 10_000 and Image.open(shot).size == (1280, 2000)


def test_the_real_audios_cs_comes_from_the_stored_reference_features(built, run_root):
    from v2a.metrics.reference_stats import stored_per_clip
    from v2a.stages.report.assets import clip_scores
    from v2a.stages.report.runs import read_frames

    w2c = get_model("tiny", "extractor:wav2clip")
    shown = [c for c, v in built["reference_cs"].items() if v is not None]
    stored = stored_per_clip(str(run_root / "reference_stats"), w2c, shown)
    assert shown and sorted(stored) == sorted(shown)  # evaluate stored every shown clip's features
    # and they give what running the extractor on the decoded audio gives
    from v2a.media import read_clip

    rows = {c: parquet.read_table(str(run_root / "clips.parquet"), clips_schema.SCHEMA, ids=[c]).to_pylist()[0]
            for c in shown}
    waves = [read_clip(rows[c]["uri"], num_frames=1, sample_rate=16000, max_seconds=1.0).audio for c in shown]
    frames = read_frames(str(run_root), shown)
    direct = clip_scores(w2c, waves, 16000, 1.0, [frames[c] for c in shown])
    assert np.allclose([built["reference_cs"][c] for c in shown], direct, atol=1e-4)


def test_a_run_scored_under_both_protocols_keeps_its_paper_numbers_and_gets_mmaudios_table(built, run_root):
    df = pd.read_parquet(run_root / "results")
    mapped = df[df["run_id"] == MAPPED]
    av = mapped[mapped["protocol"] == "av-benchmark"]
    assert set(av["metric"]) >= {"fd_passt", "kl_passt", "ib", "fd", "fad", "kl", "is", "is_passt"}
    assert np.isfinite(av["value"]).all() and set(av["channel_rule"]) == {"av-benchmark"}
    assert set(mapped[mapped["protocol"] == "v2a-mapper"]["metric"]) == {"fd", "fad", "cs", "cs_reference", "kl", "is",
                                                                         "gen_time_s", "trainable_params_m"}
    page = Path(built["index"]).read_text()
    paper_fd = float(mapped[(mapped["protocol"] == "v2a-mapper") & (mapped["metric"] == "fd")]["value"].iloc[0])
    table = page[page.index('id="metrics-table"'):page.index('id="mmaudio-table"')]
    assert f'data-run="{MAPPED}" data-metric="fd"' in table and format_value(paper_fd) in table
    mm = page[page.index('id="mmaudio-table"'):]
    ib = float(av[av["metric"] == "ib"]["value"].iloc[0])
    assert f'data-metric="ib@av-benchmark"' in mm and format_value(ib) in mm
    assert "V2A-Mapper" in mm and "arXiv 2412.15322" in mm and "not yet checked against the paper" in page


def test_a_killed_builds_work_folder_is_removed_by_the_next_build(run_root, tmp_path):
    """A build killed outright (SIGKILL) leaves its `.report-PID-*` folder; the next one clears it, and
    leaves a live build's alone."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = tmp_path / f".report-{dead.stdout.strip()}-abc123"
    live = tmp_path / f".report-{os.getpid()}-def456"
    for folder in (abandoned, live):
        (folder / "audio").mkdir(parents=True)
    report.build_report(str(run_root), [PLAIN], out=str(tmp_path / "r"), clips=1, progress=False)
    assert not abandoned.exists() and live.exists()
    assert not [p for p in tmp_path.glob(".report-*") if p not in (live,)]


def test_the_runs_per_sample_values_are_stored_and_compare_pairs_the_two_runs(run_root, capsys):
    # The run path (score_unit, write_run) stores what each averaged row averages, keyed like its results part.
    from flows.cli import main

    scores = pd.read_parquet(run_root / "scores")
    results = pd.read_parquet(run_root / "results")
    for protocol, averaged in (("v2a-mapper", {"cs", "cs_reference", "kl"}), ("av-benchmark", {"kl", "kl_passt", "ib"})):
        mine = scores[(scores["run_id"] == MAPPED) & (scores["protocol"] == protocol)]
        assert set(mine["metric"]) == averaged, protocol
        rows = results[(results["run_id"] == MAPPED) & (results["protocol"] == protocol)].set_index("metric")
        for metric in averaged:
            values = mine[mine["metric"] == metric]
            assert values["value"].mean() == pytest.approx(rows.loc[metric, "value"], rel=1e-9), metric
            assert set(values["id_list_sha256"]) == {rows.loc[metric, "id_list_sha256"]}
    kl = scores[(scores["run_id"] == MAPPED) & (scores["protocol"] == "v2a-mapper") & (scores["metric"] == "kl")]
    assert len(kl) == 2 * kl["clip_id"].nunique()  # two samples per clip

    assert main(["compare", "--out", str(run_root), PLAIN, MAPPED]) == 0
    out = capsys.readouterr().out
    assert f"A = {PLAIN}, B = {MAPPED}; protocol v2a-mapper" in out
    kl_line = next(line for line in out.splitlines() if line.lstrip().startswith("KL "))
    assert "[" in kl_line and ("better" in kl_line or "no difference resolved" in kl_line)
    fd_line = next(line for line in out.splitlines() if line.lstrip().startswith("FD "))
    assert "no paired interval: a set statistic" in fd_line
