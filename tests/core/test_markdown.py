"""Locations and pictures in Markdown a browser opens (v2a.core.markdown): links where a browser can
follow them, local paths as text to copy, pictures embedded."""

import base64

from PIL import Image

from v2a.core import markdown


def test_http_and_object_store_locations_become_links_a_browser_can_open(monkeypatch):
    for name in ("FSSPEC_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    assert markdown.web_url("https://example.org/r/index.html") == "https://example.org/r/index.html"
    assert markdown.web_url("s3://bucket/run/a b.html") == "https://bucket.s3.amazonaws.com/run/a%20b.html"
    assert markdown.web_url("gs://bucket/run/x.png") == "https://storage.googleapis.com/bucket/run/x.png"
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", "http://127.0.0.1:9000/")
    assert markdown.web_url("s3://bucket/run/x.png") == "http://127.0.0.1:9000/bucket/run/x.png"
    line = markdown.location("s3://bucket/run/index.html", "the page")
    assert line == "[the page](http://127.0.0.1:9000/bucket/run/index.html) (`s3://bucket/run/index.html`)"


def test_a_local_location_is_a_path_to_copy_with_how_to_open_it_never_a_file_link(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert markdown.web_url("runs/a/index.html") is None and markdown.web_url("file:///x/y") is None
    line = markdown.location("runs/a/index.html", "the page")
    assert line.startswith(f"the page: `{tmp_path / 'runs' / 'a' / 'index.html'}` — ")
    assert "copy" in line and "file://" not in line and "](" not in line
    assert markdown.location("file:///data/x.png", how=None) == "`/data/x.png`"


def test_a_png_is_embedded_as_a_data_uri_unless_it_is_too_large(tmp_path):
    png = tmp_path / "p.png"
    Image.new("RGB", (8, 4), (255, 0, 0)).save(png)
    embedded = markdown.inline_png(str(png), "red")
    assert embedded == f"![red](data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()})"
    assert markdown.inline_png(str(png), "red", max_bytes=10) is None
    assert markdown.inline_png(str(tmp_path / "missing.png"), "red") is None
    shown = markdown.picture(str(png), "red")
    assert shown.startswith(embedded) and str(png) in shown
