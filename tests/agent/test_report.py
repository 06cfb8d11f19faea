"""The HTML report: self-contained, linked, escaped, honest about missing images, and it renders."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.types import Box, ImageRef, ScoreCurve, TimeSpan, Trace, Verdict
from vadetective.agent.report.html import load_ground_truth, render_report, report_html
from vadetective.agent.report.images import ImageEmbedder, draw_boxes, select_keyframes
from vadetective.agent.report.plot import COLORS, timeline_data, timeline_svg


class Page(HTMLParser):
    """Every element's tag, attributes and enclosing ``<details>`` ids, and the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
        self.ids: dict[str, tuple[str, ...]] = {}
        self.text_parts: list[str] = []
        self._details: list[str] = []
        self._stack: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a, tuple(self._details)))
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids[a["id"]] = tuple(self._details)
        if tag in ("img", "meta", "br", "input", "link", "path", "use", "rect", "stop"):
            return  # void (or self-closed SVG) elements never get an end tag we can pair
        self._stack.append(tag)
        if tag == "details":
            self._details.append(a.get("id", ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a, tuple(self._details)))
        if "id" in a:
            self.ids[a["id"]] = tuple(self._details)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._stack:
            while self._stack:
                top = self._stack.pop()
                if top == "details":
                    self._details.pop()
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.text_parts)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a, _ in self.elements
            if t == tag
            and all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())
        ]


def _render(trace: Trace, trace_dir: Path, **kw: object) -> tuple[Path, str, Page]:
    out = render_report(trace, trace_dir, **kw)  # type: ignore[arg-type]
    html = out.read_text(encoding="utf-8")
    return out, html, Page(html)


def test_report_is_one_self_contained_file(sample_trace: Trace, trace_dir: Path) -> None:
    out, html, page = _render(sample_trace, trace_dir)
    assert out == trace_dir / "report.html"
    imgs = page.find("img")
    # 2 keyframes + 4 sampled frames + 1 grounded frame + 1 crop + 1 frame on the verdict step.
    assert len(imgs) == 9
    assert all(
        a["src"].startswith(("data:image/jpeg;base64,", "data:image/png;base64,")) for a in imgs
    )
    for tag, attrs, _ in page.elements:
        for name in ("src", "href", "xlink:href", "action", "poster", "data"):
            value = attrs.get(name, "")
            assert not re.match(r"\s*(https?:|//|file:|ftp:)", value, re.I), (tag, name, value)
            if name == "href" and value:
                assert value.startswith("#"), (tag, value)
        if tag == "script":
            assert "src" not in attrs
        assert tag not in ("link", "iframe", "object", "embed")
    assert "@import" not in html and "url(http" not in html
    # The CSP forbids any fetch: images only from data:, no connect/font/frame sources.
    csp = page.find("meta", http_equiv="Content-Security-Policy")[0]["content"]
    assert "default-src 'none'" in csp and "img-src data:" in csp
    # The embedded images are real pictures of the stored frames (16:9), not empty shells.
    import cv2

    raw = base64.b64decode(imgs[0]["src"].split(",", 1)[1])
    decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert decoded.shape[1] / decoded.shape[0] == pytest.approx(16 / 9, rel=0.02)
    assert decoded.std() > 10


def test_verdict_at_top_with_evidence_links_that_resolve(
    sample_trace: Trace, trace_dir: Path
) -> None:
    _, html, page = _render(sample_trace, trace_dir)
    verdict_pos = html.index('id="verdict"')
    assert verdict_pos < html.index("<h2>Timeline") < html.index('id="step-0"')
    assert "ANOMALOUS" in page.text and "0.82" in page.text
    assert "violence / harm to people" in page.text
    assert "a pedestrian falls at about 6.3 s" in page.text
    links = [a["href"] for a in page.find("a") if a.get("href", "").startswith("#")]
    assert links, "the justification cites evidence, so there must be links"
    for href in links:
        assert href[1:] in page.ids, f"dangling link {href}"
    cited = {a["href"] for a in page.find("a", class_="ref")}
    assert {"#evidence-E1", "#evidence-E3", "#evidence-E5"} <= cited
    # Each evidence anchor lives inside the collapsible step that produced it.
    assert page.ids["evidence-E1"] == ("step-0",)
    assert page.ids["evidence-E3"] == ("step-4",)
    assert page.ids["evidence-E5"] == ("step-6",)
    # Every step is present, in order, as a <details>.
    details = [a["id"] for a in page.find("details") if a.get("id", "").startswith("step-")]
    assert details == [f"step-{i}" for i in range(13)]


def test_steps_show_reasoning_args_errors_timings_and_cost(
    sample_trace: Trace, trace_dir: Path
) -> None:
    _, _, page = _render(sample_trace, trace_dir)
    text = page.text
    assert "I will look at frames across that span before deciding." in text  # planner text
    assert '"person lying on the ground"' in text  # tool args, as JSON
    assert "t_s (30.0) is outside the video (0.00-12.00 s)" in text  # failed tool call
    assert "span 6.25-14.00 s ends after the video (12.00 s)" in text  # rejected check
    assert "took 1.840 s" in text and "#4 · 0.62 s" in text  # timings
    assert "aspect_ratio" in text and "lying still" in text  # crop facts
    # Error steps open by default, and are marked.
    error_steps = {a["id"] for a in page.find("details") if "has-error" in a.get("class", "")}
    assert error_steps == {"step-5", "step-8"}
    assert all("open" in a for a in page.find("details") if a.get("id") in error_steps)
    cost = re.sub(r"\s+", " ", text[text.index("Cost") :])
    for piece in ("4 planner calls", "5 tool calls", "61 frames decoded", "plan 7.48 s"):
        assert piece in cost


def test_text_from_the_trace_is_escaped(sample_trace: Trace, trace_dir: Path) -> None:
    nasty = "<script>alert('q')</script> & co"
    steps = list(sample_trace.steps)
    steps[1] = steps[1].model_copy(update={"text": '<img src=x onerror="alert(1)"> E1 & E3'})
    verdict = sample_trace.verdict
    assert verdict is not None
    verdict = verdict.model_copy(
        update={
            "answer": "<b>bold?</b>",
            "category": '"><svg onload=alert(2)>',
            "boxes": [Box(t_s=7.5, xyxy=(1, 2, 30, 40), label="<i>thief</i>")],
        }
    )
    trace = sample_trace.model_copy(update={"question": nasty, "steps": steps, "verdict": verdict})
    _, html, page = _render(trace, trace_dir)
    assert len(page.find("script")) == 1  # only the report's own script
    assert not [a for a in page.find("img") if a["src"] == "x"]
    assert not [a for _, a, _ in page.elements if any(k.startswith("on") for k in a)]
    assert "<b>bold?</b>" not in html and "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert not page.find("i") and not page.find("svg", onload="alert(2)")
    for raw in (nasty, "<b>bold?</b>", '"><svg onload=alert(2)>', "<i>thief</i>"):
        assert raw in page.text, raw
    # Evidence ids in the planner's words are still linked after escaping.
    assert (
        '&lt;img src=x onerror=&quot;alert(1)&quot;&gt; <a class="ref" href="#evidence-E1">E1</a> &amp;'
        in html
    )


def test_missing_and_changed_images_become_visible_placeholders(
    sample_trace: Trace, trace_dir: Path
) -> None:
    (trace_dir / "frames" / "E3_t007.50.jpg").unlink()
    crop = trace_dir / "crops" / "E5_crop0.jpg"
    crop.write_bytes(crop.read_bytes() + b"\x00")  # still decodes, but the hash differs
    evidence = list(sample_trace.evidence)
    outside = ImageRef(path="../elsewhere.jpg", sha256="0" * 64, kind="frame", t_s=1.0)
    shutil.copy(trace_dir / "frames" / "E2_t005.50.jpg", trace_dir.parent / "elsewhere.jpg")
    evidence[1] = evidence[1].model_copy(update={"images": [*evidence[1].images, outside]})
    trace = sample_trace.model_copy(update={"evidence": evidence})
    _, html, page = _render(trace, trace_dir)
    placeholders = re.findall(r'<div class="placeholder">([^<]*)</div>', html)
    assert placeholders == [
        "image unavailable: ../elsewhere.jpg points outside the trace folder",
        "image unavailable: missing file frames/E3_t007.50.jpg",
    ]
    assert html.count("hash mismatch</span>") == 1
    # The 7.5 s keyframe falls back to the other frame at 7.5 s (the downscaled one).
    assert len(page.find("img")) == 8


def test_keyframes_pick_the_sharpest_nearest_frame_and_assign_boxes(
    sample_trace: Trace, trace_dir: Path
) -> None:
    embedder = ImageEmbedder(trace_dir, (320, 180))
    kfs = select_keyframes(sample_trace, pixels=embedder.pixel_count)
    assert [(k.t_s, k.ref.path if k.ref else None, len(k.boxes)) for k in kfs] == [
        (7.5, "frames/E3_t007.50.jpg", 1),
        (8.25, "frames/verdict_t008.25.jpg", 1),
    ]
    # Without sizes, equally near frames tie-break by path: the downscaled sampled frame.
    assert select_keyframes(sample_trace)[0].ref.path == "frames/E2_t007.50.jpg"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spans", "boxes", "expected"),
    [
        # A span without boxes: frames nearest its start, middle and end, inside the span.
        ([(5.4, 8.6)], [], [(5.4, 5.5), (7.0, 6.5), (8.6, 8.5)]),
        # A short span holding one frame: that frame once.
        ([(7.4, 7.6)], [], [(7.4, 7.5)]),
        # Boxes but no span: keyframes for the boxes alone.
        ([], [8.25], [(8.25, 8.25)]),
        # A box outside every span joins the nearest span.
        ([(5.0, 6.0)], [6.6], [(6.6, 6.5)]),
    ],
)
def test_keyframe_selection_cases(
    sample_trace: Trace,
    spans: list[tuple[float, float]],
    boxes: list[float],
    expected: list[tuple[float, float]],
) -> None:
    assert sample_trace.verdict is not None
    verdict = sample_trace.verdict.model_copy(
        update={
            "spans": [TimeSpan(start_s=a, end_s=b) for a, b in spans],
            "boxes": [Box(t_s=t, xyxy=(10, 10, 50, 60), label="x") for t in boxes],
        }
    )
    kfs = select_keyframes(sample_trace.model_copy(update={"verdict": verdict}))
    got = [(k.t_s, k.ref.t_s if k.ref else None) for k in kfs]
    assert got == expected


def test_keyframe_without_any_frame_is_a_placeholder(sample_trace: Trace, trace_dir: Path) -> None:
    evidence = [e.model_copy(update={"images": []}) for e in sample_trace.evidence]
    steps = [s.model_copy(update={"images": []}) for s in sample_trace.steps]
    trace = sample_trace.model_copy(update={"evidence": evidence, "steps": steps})
    _, html, page = _render(trace, trace_dir)
    assert not page.find("img")
    assert html.count("no frame image in this trace near") == 2


def test_draw_boxes_scales_original_coordinates_onto_a_smaller_frame() -> None:
    image = np.zeros((90, 160, 3), np.uint8)
    box = Box(t_s=0.0, xyxy=(100.0, 50.0, 200.0, 150.0), label="", score=1.0)
    out = draw_boxes(image, [box], resolution_wh=(320, 180))
    assert image.max() == 0  # the input is untouched
    # Original (100, 50)-(200, 150) is (50, 25)-(100, 75) on the half-size frame.
    assert out[50, 50].max() > 100 and out[50, 100].max() > 100  # left and right edges
    assert out[75, 75].max() > 100  # bottom edge
    assert out[50, 75].max() == 0  # inside stays empty
    assert out[50, 120].max() == 0 and out[85, 75].max() == 0  # outside stays empty


def _write_truth(path: Path, payload: object) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_ground_truth_is_drawn_when_given(
    sample_trace: Trace, trace_dir: Path, tmp_path: Path
) -> None:
    truth = _write_truth(
        tmp_path / "cam03.truth.json",
        {
            "kind": "fall",
            "spans": [{"start_s": 6.0, "end_s": 9.0, "score": None, "label": None}],
            "boxes": [],
        },
    )
    _, with_truth, page = _render(
        sample_trace, trace_dir, out=tmp_path / "a.html", ground_truth=truth
    )
    _, without, _ = _render(sample_trace, trace_dir, out=tmp_path / "b.html")
    truth_fill = f"fill: {COLORS['truth']}"
    assert truth_fill in with_truth and truth_fill not in without
    assert "truth-legend" in page.ids
    assert "6.00–9.00 s" in page.text
    assert "ground truth" not in Page(without).text


@pytest.mark.parametrize(
    "payload",
    [
        {"spans": [{"start_s": 6.0, "end_s": 9.0}, {"start_s": 1.0, "end_s": 2.0}]},
        {"spans": [[6.0, 9.0], [1.0, 2.0]]},
        [{"start_s": 1.0, "end_s": 2.0}, {"start_s": 6.0, "end_s": 9.0}],
    ],
)
def test_ground_truth_file_forms(tmp_path: Path, payload: object) -> None:
    spans = load_ground_truth(_write_truth(tmp_path / "x.truth.json", payload))
    assert [(s.start_s, s.end_s) for s in spans] == [(1.0, 2.0), (6.0, 9.0)]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"segments": []}, '"spans" list'),
        ({"spans": [{"start_s": 5.0, "end_s": 2.0}]}, "span 0 is invalid"),
        ({"spans": ["6-9"]}, "span 0 is invalid"),
    ],
)
def test_bad_ground_truth_files_say_what_is_wrong(
    tmp_path: Path, payload: object, message: str
) -> None:
    with pytest.raises(DatasetError, match=re.escape(message)):
        load_ground_truth(_write_truth(tmp_path / "x.truth.json", payload))
    with pytest.raises(DatasetError, match="no ground-truth file"):
        load_ground_truth(tmp_path / "absent.truth.json")


def test_timeline_uses_the_whole_video_curve_and_no_pyplot_state(sample_trace: Trace) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    data = timeline_data(sample_trace, [])
    assert data.main_id == "E1" and data.main is not None and len(data.main) == 49
    assert data.duration_s == 12.0
    assert [eid for eid, _ in data.candidates] == ["E1", "E1"]
    svg = timeline_svg(data)
    assert svg is not None and svg.startswith('<svg class="timeline"')
    assert "<?xml" not in svg and "<metadata>" not in svg and 'width="' not in svg.split(">", 1)[0]
    for label in (
        "family: public safety",
        "anomaly score (E1)",
        "verdict frame scores",
        "candidates",
    ):
        assert f"<!-- {label} -->" in svg
    assert plt.get_fignums() == before


def test_trace_without_verdict_video_or_images_still_renders(tmp_path: Path) -> None:
    trace = Trace(question="Anything odd?")
    out, _, page = _render(trace, tmp_path)
    assert out.exists()
    assert "No verdict" in page.text and "No score curve or span in this trace." in page.text
    assert "This trace has no steps." in page.text
    # An undecided verdict with a curve only in frame_scores still draws a timeline.
    curve = ScoreCurve(t_s=[0.0, 1.0, 2.0], score=[0.1, 0.5, 0.2])
    verdict = Verdict(question="q", answer="unsure", is_anomalous=None, frame_scores=curve)
    html2 = report_html(trace.model_copy(update={"verdict": verdict}), tmp_path)
    assert "UNDECIDED" in html2 and '<svg class="timeline"' in html2


def test_cited_evidence_missing_from_the_trace_is_not_a_dead_link(
    sample_trace: Trace, trace_dir: Path
) -> None:
    assert sample_trace.verdict is not None
    verdict = sample_trace.verdict.model_copy(
        update={"evidence_ids": ["E1", "E9"], "justification": "see E9"}
    )
    _, html, _ = _render(sample_trace.model_copy(update={"verdict": verdict}), trace_dir)
    assert "#evidence-E9" not in html
    assert html.count('<span class="missing-ref" title="not in this trace">E9</span>') == 2


# ---------------------------------------------------------------------------- real browser


@pytest.mark.browser
def test_report_renders_in_headless_chromium(
    sample_trace: Trace, trace_dir: Path, chromium: Any, tmp_path: Path
) -> None:
    import cv2

    out = render_report(sample_trace, trace_dir, ground_truth=[TimeSpan(start_s=6.0, end_s=9.0)])
    png = tmp_path / "report.png"
    run = chromium.screenshot(out.resolve().as_uri(), png)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.console == [], run.console  # no script error, no blocked fetch, no log
    shot = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert shot is not None and shot.shape[:2] == (2000, 1280)
    gray = cv2.cvtColor(shot, cv2.COLOR_BGR2GRAY)
    assert gray.std() > 20  # a blank page is one flat colour
    # The rendered page shows colour: the red verdict bar, the plot and the frames.
    assert (shot.max(axis=2).astype(int) - shot.min(axis=2)).max() > 100
    # Following a link into a collapsed step opens it (the page's own script ran).
    dom_run = chromium.dump_dom(out.resolve().as_uri() + "#evidence-E2")
    assert dom_run.returncode == 0 and dom_run.console == [], dom_run.console
    dom = Page(dom_run.stdout)
    step2 = next(a for a in dom.find("details") if a.get("id") == "step-2")
    assert "open" in step2
    closed = next(
        a for a in Page(out.read_text(encoding="utf-8")).find("details") if a.get("id") == "step-2"
    )
    assert "open" not in closed


@pytest.mark.browser
def test_chromium_check_catches_errors_and_blocked_fetches(
    sample_trace: Trace, trace_dir: Path, chromium: Any, tmp_path: Path
) -> None:
    """The console check can fail: a script error and an external image both show up."""
    html = report_html(sample_trace, trace_dir)
    broken = html.replace("</main>", '<img src="http://127.0.0.1:9/x.png" alt="external"></main>')
    page = tmp_path / "broken.html"
    page.write_text(broken, encoding="utf-8")
    run = chromium.dump_dom(page.resolve().as_uri())
    assert any("Content Security Policy" in m for m in run.console), run.console
    scripted = tmp_path / "scripted.html"
    scripted.write_text("<!DOCTYPE html><p>x</p><script>undefinedFn()</script>", encoding="utf-8")
    run = chromium.dump_dom(scripted.resolve().as_uri())
    assert any("Uncaught ReferenceError" in m for m in run.console), run.console
