"""The explorer page: self-contained, its JavaScript geometry and design equal to Python's, edited in a real
headless Chromium (skipped, with the reason, where there is none)."""

import contextlib
import importlib.util
import io
import json
import os
import random
import re
import struct
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import dilated
from browser import SCREEN, Chromium, explorer_screenshot, find_chromium
from dilated._resolve import Target, model_from_config, resolve_target
from dilated.cli import main
from dilated.design import design
from dilated.explore import ReadOnly, page, stack_state, target_state, write_explorer
from dilated.geometry import Layer, dependencies, stack_geometry
from dilated.layers import Conv1d
from dilated.summaries import summary
from helpers import HandDelay

ARTIFACTS = Path(__file__).parent.parent / "docs" / "images"


def test_the_page_is_self_contained(tmp_path):
    text = write_explorer(tmp_path / "explorer.html").read_text()
    assert "__STATE__" not in text and "__SCRIPT__" not in text and "__TITLE__" not in text
    assert not re.search(r"<script[^>]+src=|<link|@import|url\(|fetch\(|XMLHttpRequest|WebSocket", text)
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}  # a namespace name
    assert "default-src 'none'" in text  # the page's own policy forbids loading anything


def test_the_page_opens_on_existing_models():
    seed = target_state(resolve_target("example-dilated"))
    assert (seed["stack"]["input_channels"], seed["stack"]["input_length"], seed["read_only"]) == (2, 200, None)
    assert [(la["kernel_size"], la["dilation"], la["padding"], la["channels"]) for la in seed["stack"]["layers"]] == [
        (5, 2, "causal", 5),
        (5, 4, "causal", 5),
        (1, 1, "valid", 1),
    ]
    assert seed["summary"] == summary(resolve_target("example-dilated").model, (2, 200)).to_dict() | {
        "title": "example-dilated"
    }
    assert [row["name"] for row in seed["graph"]["rows"]] == ["input", "0", "1", "2"]
    tcn = target_state(resolve_target("tcn"))  # residual blocks: drawn as a graph, not editable
    assert tcn["stack"] is None and "reads 2 layers (a branch joins there)" in tcn["read_only"]
    assert tcn["summary"]["total_params"] == 66_650 and len(tcn["graph"]["rows"]) > 16
    assert {row["block"] for row in tcn["graph"]["rows"]} >= {f"blocks.{i}" for i in range(8)}
    translob = target_state(resolve_target("translob"))
    assert translob["stack"] is None and "whole input" in translob["summary"]["receptive_field_line"]
    assert any("stops at" in note for note in translob["graph"]["notes"])


def test_a_stack_with_activations_is_rebuilt_as_it_is():
    stack = model_from_config(
        {
            "input": [3, 50],
            "layers": [
                {"type": "conv1d", "channels": 4, "kernel_size": 3, "dilation": 2, "activation": "relu"},
                {"type": "maxpool1d", "kernel_size": 2},
                {"type": "conv1d", "channels": 2, "kernel_size": 2, "activation": "tanh"},
            ],
        }
    )
    state = target_state(stack)
    assert [(la["kind"], la.get("activation")) for la in state["stack"]["layers"]] == [
        ("conv", "relu"),
        ("maxpool", None),
        ("conv", "tanh"),
    ]
    unplain = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4))
    with pytest.raises(ReadOnly, match=r"1 \(BatchNorm1d\) is not a conv, pool, dense layer or activation"):
        stack_state(summary(unplain, (1, 20)), "m", (1, 20))


def test_the_page_opens_on_a_keras_model(tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential(
        [
            keras.Input((64, 3)),
            keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2),
            keras.layers.MaxPooling1D(2),
            keras.layers.Dense(1),
        ]
    )
    model.save(tmp_path / "m.keras")
    state = target_state(resolve_target(str(tmp_path / "m.keras")))
    assert (state["stack"]["input_channels"], state["stack"]["input_length"]) == (3, 64)
    assert [(la["kind"], la["kernel_size"], la["stride"], la["channels"]) for la in state["stack"]["layers"]][:2] == [
        ("conv", 3, 1, 4),
        ("maxpool", 2, 2, None),
    ]


def test_explicit_paddings_become_the_pages_spellings():
    model = nn.Sequential(Conv1d(1, 1, 3, padding=(2, 0)), nn.Conv1d(1, 1, 3, padding=1), nn.Conv1d(1, 2, 3, padding=2))
    state = stack_state(summary(model, (1, 20)), "m", (1, 20))
    assert [la["padding"] for la in state["layers"]] == ["causal", 1, 2]
    with pytest.raises(ReadOnly, match="the explorer edits paddings causal, same, valid or one int"):
        stack_state(summary(nn.Sequential(Conv1d(1, 1, 3, padding=(3, 1))), (1, 20)), "m", (1, 20))


# --- in a real browser -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """The headless browser; skipped without one, except where ``DILATED_REQUIRE_BROWSER=1`` (CI) makes it fail."""
    required = os.environ.get("DILATED_REQUIRE_BROWSER") == "1"
    binary = find_chromium()
    if binary is None or importlib.util.find_spec("websocket") is None:
        reason = (
            "no Chromium on this machine (Debian: apt-get install chromium)"
            if binary is None
            else "websocket-client is not installed (pip install -e '.[dev]')"
        )
        reason += ": the explorer's browser tests need a real headless browser"
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    chromium = Chromium(binary)
    yield chromium
    chromium.close()


@pytest.fixture
def example_page(browser, tmp_path):
    path = write_explorer(tmp_path / "explorer.html", "example-dilated")
    browser.open(path.as_uri())
    yield path
    assert browser.errors == []
    assert browser.requests == [path.as_uri()]  # nothing else was fetched: no network, no CDN


def random_layer(rng: random.Random) -> dict:
    kind = rng.choice(["conv", "conv", "conv", "maxpool", "avgpool"])
    stride, dilation = (rng.choice([1, 1, 2, 3]), 1) if rng.random() < 0.4 else (1, rng.choice([1, 2, 3, 4, 8]))
    paddings = ["causal", "same", "valid", 0, 1, 2] if kind == "conv" else ["same", "valid", 0, 1]
    return {
        "kind": kind,
        "kernel_size": rng.randint(1, 5),
        "dilation": dilation if kind == "conv" else 1,
        "stride": stride if rng.random() < 0.9 else 2,
        "padding": rng.choice(paddings),
        "channels": rng.randint(1, 6) if kind == "conv" else None,
    }


def python_geometry(stack: dict) -> dict:
    try:
        layers = [
            Layer(la["kernel_size"], la["stride"], la["dilation"], la["padding"], la["kind"]) for la in stack["layers"]
        ]
        rows = stack_geometry(layers, stack["length"])
    except ValueError:
        return {"error": True}
    last = rows[-1].output_length
    return {
        "rows": [[r.output_length, r.pad_left, r.pad_right, r.receptive_field, r.jump, r.start] for r in rows],
        "fed": [dependencies(layers, stack["length"], i)[0] for i in sorted({0, last // 2, last - 1})],
    }


JS_GEOMETRY = """(stacks) => stacks.map((s) => {
  const G = window.dilatedGeometry;
  try {
    const rows = G.stackGeometry(s.layers, s.length), last = rows[rows.length - 1].output_length;
    const state = {name: "x", inputChannels: s.channels, inputLength: s.length, layers: s.layers};
    return {rows: rows.map((r) => [r.output_length, r.pad_left, r.pad_right, r.receptive_field, r.jump, r.start]),
            fed: [...new Set([0, Math.floor(last / 2), last - 1])].sort((a, b) => a - b)
                   .map((i) => G.dependencies(s.layers, s.length, i)[0]),
            params: G.params(s.layers, s.channels), yaml: window.dilatedExport.stackYaml(state)};
  } catch (e) { return {error: true, message: e.message}; }
})"""


def test_the_page_geometry_equals_dilated_geometry(browser, example_page):
    rng = random.Random(16)
    stacks = [
        {
            "layers": [random_layer(rng) for _ in range(rng.randint(1, 4))],
            "length": rng.randint(1, 60),
            "channels": rng.randint(1, 4),
        }
        for _ in range(400)
    ]
    results = browser.evaluate(f"({JS_GEOMETRY})({json.dumps(stacks)})")
    valid = 0
    for stack, js in zip(stacks, results):
        expected = python_geometry(stack)
        assert js.get("error", False) == expected.get("error", False), (stack, js)
        if expected.get("error"):
            continue
        valid += 1
        assert (js["rows"], js["fed"]) == (expected["rows"], expected["fed"]), stack
        built = model_from_config(yaml.safe_load(js["yaml"]))  # the page's export, built by dilated._resolve
        assert built.input_shape == (stack["channels"], stack["length"])
        assert sum(p.numel() for p in built.model.parameters()) == js["params"]
    assert valid > 150  # most random stacks are valid; the rest must be refused by both


def test_the_page_design_equals_dilated_design(browser, example_page):
    rng = random.Random(4096)
    cases = []
    for _ in range(150):
        kernels = rng.choice([rng.randint(2, 7), [2, 3], [3, 5]])
        cases.append(
            {
                "receptive_field": rng.randint(2, 20000),
                "kernel_size": kernels,
                "max_layers": rng.choice([None, rng.randint(1, 14)]),
                "max_dilation": rng.choice([None, rng.randint(1, 900)]),
                "channels": rng.randint(1, 64),
                "block": rng.choice(["plain", "residual1", "residual2"]),
                "input_channels": rng.randint(1, 5),
                "top": rng.randint(1, 6),
                "sort_by": rng.choice([["layers"], ["params"], ["overshoot", "flops"]]),
            }
        )
    js = browser.evaluate(
        f"{json.dumps(cases)}.map((c) => {{ try {{ return window.dilatedDesign.propose(c) }} "
        "catch (e) { return e.message } })"
    )
    for case, got in zip(cases, js):
        try:
            expected = design(**case)
        except ValueError as error:
            assert isinstance(got, str) and "unreachable" in got and "unreachable" in str(error), case
            continue
        assert [
            (p["kernel_size"], tuple(p["dilations"]), p["receptive_field"], p["params"], p["flops"]) for p in got
        ] == [(p.kernel_size, p.dilations, p.receptive_field, p.params, p.flops) for p in expected], case


STATS = ("rf", "jump", "outlen", "params", "coverage", "causal")


def numbers(browser, keys: tuple[str, ...] = STATS[:5]) -> dict:
    return {key: browser.text(f"#{key}") for key in keys}


def summary_json(args: list[str]) -> dict:
    """What `dilated summary ARGS --json` prints, parsed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["summary", *args, "--json"]) == 0
    return json.loads(out.getvalue())


def page_numbers(data: dict, keys: tuple[str, ...] = STATS[:5]) -> dict:
    """The header a page must show for a summary's JSON."""
    causal = {True: "yes", False: "no", None: "-"}.get(data["causal"], data["causal"])
    shown = {
        "rf": str(data["receptive_field"]),
        "jump": str(data["jump"]),
        "outlen": str(data["output_length"]),
        "params": f"{data['total_params']:,}",
        "coverage": f"{data['fed']} of {data['receptive_field']}",
        "causal": causal,
    }
    return {key: shown[key] for key in keys}


GRAPH_NUMBERS = """[...document.querySelectorAll('#graph .gnode')].filter((g) => g.querySelector('.rf')).map((g) =>
  [g.dataset.name, g.classList.contains('collapsed') ? g.dataset.block : null,
   ...['rf', 'jump', 'len', 'params', 'block-params'].map((c) => g.querySelector('.' + c)?.textContent)])"""


def graph_numbers_equal_the_summary(browser, data: dict) -> int:
    """Every number on the graph's boxes equals the summary row of the same name (a collapsed block: its field,
    jump and length are its output row's, its parameters the sum of its rows'); returns how many boxes."""
    rows = {row["name"]: row for row in data["layers"]}
    boxes = browser.evaluate(GRAPH_NUMBERS)
    for name, block, rf, jump, length, params, block_params in boxes:
        row = rows[name]
        time = row["output_shape"][-1] if data["layout"].startswith("(batch, channels") else row["output_shape"][1]
        assert (rf, jump, length) == (
            f"RF {row['receptive_field']}",
            f" \u00b7 jump {row['jump']}",
            f" \u00b7 T={time}",
        )
        if block is None:
            assert (params, block_params) == (f" \u00b7 {row['params']:,} params", None), name
        else:
            total = sum(r["params"] for r in data["layers"] if r["name"].startswith(block + "."))
            assert (params, block_params) == (None, f" \u00b7 {total:,} params"), name
    return len(boxes)


def expected_numbers(layers: list[Layer], length: int, params: int) -> dict:
    rows = stack_geometry(layers, length)
    fed = dependencies(
        layers,
        3 * rows[-1].receptive_field + 4 * rows[-1].jump,
        stack_geometry(layers, 3 * rows[-1].receptive_field + 4 * rows[-1].jump)[-1].output_length // 2,
    )
    return {
        "rf": str(rows[-1].receptive_field),
        "jump": str(rows[-1].jump),
        "outlen": str(rows[-1].output_length),
        "params": f"{params:,}",
        "coverage": f"{len(fed[0])} of {rows[-1].receptive_field}",
    }


def conv(kernel_size: int, dilation: int = 1, stride: int = 1) -> Layer:
    return Layer(kernel_size, stride, dilation, "causal")


def test_editing_the_seed_stack_in_the_page(browser, example_page, tmp_path):
    dense = Layer(1)
    assert numbers(browser) == expected_numbers([conv(5, 2), conv(5, 4), dense], 200, 191) | {"coverage": "13 of 25"}
    assert browser.evaluate("window.dilatedExplorer.tree.holes.length") == 12
    assert browser.evaluate("window.dilatedExplorer.tree.lit.map((s) => s.size)") == [13, 5, 1, 1]

    browser.type('input[data-layer="0"][data-field="dilation"]', "1")  # the theorem's fix: dilation 1 first...
    assert numbers(browser) == expected_numbers([conv(5, 1), conv(5, 4), dense], 200, 191)
    browser.type('input[data-layer="1"][data-field="dilation"]', "5")  # ...then 5: 25 steps, all read
    assert numbers(browser) == expected_numbers([conv(5, 1), conv(5, 5), dense], 200, 191) | {"coverage": "25 of 25"}
    assert browser.evaluate("window.dilatedExplorer.tree.holes") == []

    browser.click('button[data-layer="2"][data-action="remove"]')  # drop the Dense, add a conv: k=5, d=10
    browser.click("#add")
    browser.type('input[data-layer="2"][data-field="channels"]', "3")
    stack = [conv(5, 1), conv(5, 5), conv(5, 10)]
    assert numbers(browser) == expected_numbers(stack, 200, 2 * 5 * 5 + 5 + 5 * 5 * 5 + 5 + 5 * 3 * 5 + 3)
    browser.click('button[data-layer="2"][data-action="up"]')  # reorder: the field and fed set stay, params change
    assert browser.value('input[data-layer="1"][data-field="dilation"]') == "10"
    assert numbers(browser) == expected_numbers(
        [conv(5, 1), conv(5, 10), conv(5, 5)], 200, 2 * 5 * 5 + 5 + 5 * 3 * 5 + 3 + 3 * 5 * 5 + 5
    )

    browser.click("#toggle")  # dilated -> strided, as the dilated-vs-strided comparison
    strided = [conv(5, 1, 1), conv(5, 1, 10), conv(5, 1, 5)]
    assert numbers(browser)["outlen"] == str(stack_geometry(strided, 200)[-1].output_length) == "4"
    assert numbers(browser)["jump"] == "50"
    browser.click("#toggle")
    browser.type("#input-length", "64")
    assert numbers(browser)["outlen"] == "64"

    browser.type("#design-target", "1000")  # design proposals for a typed target, then use the first one
    browser.type("#design-kernel", "3")
    browser.type("#design-channels", "8")
    browser.click("#propose")
    best = design(1000, 3, channels=8, input_channels=2)[0]
    cells = browser.evaluate("[...document.querySelectorAll('#proposals tr:first-child td')].map((c) => c.textContent)")
    assert cells[:8] == ["1", "7", "3", "1001", "1", f"{best.params:,}", f"{best.flops:,}", "1, 3, 9, 27, 81, 189, 190"]
    browser.click('#proposals button[data-proposal="0"]')
    assert numbers(browser) == expected_numbers(best.geometry, 1001, best.params) | {"coverage": "1001 of 1001"}

    exported = yaml.safe_load(browser.value("#yaml"))  # the page's YAML, read by dilated._resolve and streamed
    target = model_from_config(exported)
    assert summary(target.model, target.input_shape).receptive_field == 1001
    stream = dilated.stream(target.model.eval())
    assert stream.step_many(torch.randn(1, 2, 8)).shape == (1, 8, 8)
    model_config = yaml.safe_load(browser.value("#model-yaml"))
    assert model_config == {
        "model": "dilated_stack",
        "options": {
            "input_channels": 2,
            "channels": 8,
            "kernel_size": 3,
            "block": "plain",
            "dilations": list(best.dilations),
        },
    }
    built = model_from_config(model_config).model
    assert sum(p.numel() for p in built.parameters()) == best.params

    shot = browser.screenshot(tmp_path / "explorer-edited.png")
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])
    assert (width, height) == SCREEN


def test_an_impossible_edit_clears_every_derived_view(browser, example_page):
    browser.type('input[data-layer="0"][data-field="stride"]', "2")  # stride 2 with dilation 2: Keras refuses
    assert "Keras refuses stride=2 together with dilation=2" in browser.text("#error")
    assert [browser.text(f"#{key}") for key in STATS] == ["-"] * len(STATS)
    assert [browser.text(f"#{key}") for key in ("holes-note", "compare", "warning", "graph")] == ["", "", "", ""]
    assert (browser.value("#yaml"), browser.value("#model-yaml")) == ("", "")
    assert browser.evaluate("window.dilatedExplorer.tree.error").startswith("layer 0 (conv k=5 d=2 s=2 causal)")
    assert browser.evaluate("window.dilatedExplorer.tree.holes") == []
    browser.type('input[data-layer="0"][data-field="stride"]', "1")  # fixed: every view is back
    assert numbers(browser) == page_numbers(summary_json(["example-dilated"]))
    assert browser.text("#holes-note").startswith("12 steps under the field") and browser.text("#compare")


def test_the_strided_counterpart_says_when_striding_leaves_less_than_one_output(browser, example_page):
    assert browser.text("#compare") == "strided: receptive field 13, jump 8, output length 25"
    browser.type('input[data-layer="1"][data-field="dilation"]', "512")
    assert browser.text("#compare") == (
        "strided: striding leaves fewer outputs than one from layer 1 on (its input has 100 steps, its stride is 512)"
    )


def test_a_short_input_draws_the_clis_warning(browser, example_page):
    assert browser.text("#warning") == ""
    browser.type("#input-length", "20")
    assert browser.text("#warning") == summary_json(["example-dilated", "--input", "2,20"])["warning"]
    assert numbers(browser) == page_numbers(summary_json(["example-dilated", "--input", "2,20"]))


def test_readme_screenshot(browser, tmp_path):
    """The README's picture, made the way `python tests/browser.py docs/images/explorer.png` makes it."""
    shot = explorer_screenshot(browser, write_explorer(tmp_path / "explorer.html"), tmp_path / "explorer.png")
    assert struct.unpack(">II", shot.read_bytes()[16:24]) == SCREEN
    assert browser.errors == [] and browser.evaluate("document.querySelectorAll('#proposals tr').length") == 5
    if (ARTIFACTS / "explorer.png").is_file():  # the committed picture has the same size
        assert struct.unpack(">II", (ARTIFACTS / "explorer.png").read_bytes()[16:24]) == SCREEN


def test_cli_writes_the_page(tmp_path, capsys):
    assert main(["explore", "tcn", "-o", str(tmp_path / "t.html")]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 't.html'} (opens on tcn")
    state = json.loads(
        re.search(
            r'<script id="initial-state" type="application/json">(.*?)</script>',
            (tmp_path / "t.html").read_text(),
            re.S,
        ).group(1)
    )
    assert state == target_state(resolve_target("tcn"))
    assert page(state) == (tmp_path / "t.html").read_text()


def test_the_page_state_carries_the_causality_line():
    model = nn.Sequential(nn.Conv1d(1, 2, 3, padding=2), HandDelay())
    state = target_state(Target(model, (1, 20), "m"))
    assert state["summary"]["causal"] == "unknown" and state["read_only"] is not None
    assert state["summary"]["notes"][-1].startswith("Causal: unknown (layer 1 is not followed")
    assert json.dumps(state["summary"]["notes"][-1]) in page(state)


# --- real models: branched Keras, the 30-block WaveNet, zoom and pan -----------------------------------------------


def open_page(browser, tmp_path, args: list[str]) -> Path:
    """`dilated explore ARGS` written and opened in the browser (no errors, nothing fetched)."""
    path = tmp_path / "page.html"
    assert main(["explore", *args, "-o", str(path)]) == 0
    browser.open(path.as_uri())
    assert browser.errors == [] and browser.requests == [path.as_uri()]
    return path


def timed(browser, action: str, repeats: int = 5) -> float:
    """Median milliseconds of a page action (JavaScript) and the redraw it causes, measured in the page."""
    return browser.evaluate(
        f"""(() => {{ const times = [];
        for (let i = 0; i < {repeats}; i++) {{ const t0 = performance.now(); {action}; times.push(performance.now() - t0); }}
        return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]; }})()"""
    )


def test_a_branched_keras_model_is_drawn_as_a_graph_with_the_summarys_numbers(browser, tmp_path, capsys):
    pytest.importorskip("keras")
    from dilated.examples.gated_wavenet import build_keras

    keras_file = tmp_path / "gated.keras"
    model = build_keras(8, (1, 2, 4, 8))
    model.save(keras_file)  # Input((None, 1)): --input fixes the length, as for draw
    open_page(browser, tmp_path, [str(keras_file), "--input", "1,256"])
    data = summary_json([str(keras_file), "--input", "1,256"])
    assert data["receptive_field"] == 17  # the chain the page used to draw said 32
    assert (
        numbers(browser, STATS)
        == page_numbers(data, STATS)
        == {
            "rf": "17",
            "jump": "1",
            "outlen": "256",
            "params": "1,625",
            "coverage": "17 of 17",
            "causal": "yes",
        }
    )
    assert graph_numbers_equal_the_summary(browser, data) == 17  # each Conv1D that feeds the output, named as in Keras
    joins = browser.evaluate("[...document.querySelectorAll('#graph .join-symbol')].map((t) => t.textContent)")
    assert joins.count("\u00d7") == 4 and joins.count("+") == 4  # the gates, 3 residual sums read on, the skip sum
    levels = browser.evaluate(
        "(() => { const y = {}; document.querySelectorAll('#graph .gnode rect').forEach((r) => "
        "{ y[r.parentNode.dataset.name] = r.getAttribute('y'); }); return y; })()"
    )
    first_filter, first_gate = [layer.name for layer in model.layers if type(layer).__name__ == "Conv1D"][1:3]
    assert levels[first_filter] == levels[first_gate]  # the tanh and sigmoid convs side by side
    assert browser.evaluate("window.dilatedExplorer.tree.lit[0].size") == 17
    browser.click("#hide-pointwise")  # the tree of the time-moving rows only: the input, 9 k=2 convs, the output
    assert browser.evaluate("window.dilatedExplorer.tree.shown.length") == 11
    assert browser.evaluate("window.dilatedExplorer.tree.holes.length") == 0
    # Keras numbers a layer's default name per process (multiply, multiply_1, ...): other tests may have built one
    assert re.match(r"Read-only: multiply(_\d+)? reads 2 layers \(a branch joins there\)", browser.text("#read-only"))
    assert browser.evaluate("document.querySelector('#editor').hidden") is True
    assert re.match(r"# read-only: multiply(_\d+)? reads 2 layers", browser.value("#yaml"))
    capsys.readouterr()


def test_the_30_block_wavenet_fits_a_laptop_screen_with_the_summarys_numbers(browser, tmp_path, capsys):
    path = open_page(browser, tmp_path, ["wavenet"])  # 30 blocks, 4,096 steps
    data = summary_json(["wavenet"])
    assert numbers(browser, STATS) == page_numbers(data, STATS)
    assert (data["receptive_field"], data["total_params"]) == (3071, 556_864)
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    browser.open(path.as_uri())
    size = browser.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size == [1366, 768]  # the page fits the screen: panels scroll inside, the page does not
    collapsed = browser.evaluate("document.querySelectorAll('#graph .gnode.collapsed').length")
    assert collapsed == 30 and graph_numbers_equal_the_summary(browser, data) == 34
    assert browser.evaluate("window.dilatedExplorer.tree.shown.length") == 35
    tree_box = browser.evaluate(
        "(() => { const r = document.querySelector('#tree').getBoundingClientRect(); return [r.bottom, r.right]; })()"
    )
    assert tree_box[0] <= 768 and tree_box[1] <= 1366  # the whole tree at first view
    shot = browser.screenshot(tmp_path / "wavenet.png")
    assert struct.unpack(">II", shot.read_bytes()[16:24]) == (1366, 768)
    timings = {
        "choose an output": timed(
            browser,
            "const o = document.querySelector('#output-index'); o.value = String(4000 - i); "
            "o.dispatchEvent(new Event('input', {bubbles: true}))",
        ),
        "zoom in and out": timed(browser, "window.dilatedExplorer.tree.zoom(i % 2 ? 0.5 : 2)"),
        "expand and collapse a block": timed(
            browser,
            "document.querySelector('#graph [data-block=\"blocks.7\"]')"
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        ),
        "expand every block": timed(
            browser, "document.querySelector('#expand-all').click(); document.querySelector('#collapse-all').click()", 3
        ),
    }
    browser.click("#expand-all")
    assert browser.evaluate("window.dilatedExplorer.tree.shown.length") == 94
    assert graph_numbers_equal_the_summary(browser, data) == 93  # every row's numbers, blocks expanded
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=SCREEN[0], height=SCREEN[1], deviceScaleFactor=1, mobile=False
    )
    with capsys.disabled():
        print(
            "\nexplorer timings, 30-block WaveNet at 4,096 steps (ms, median): "
            + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
        )


def test_the_tree_zooms_and_pans_over_the_whole_field(browser, tmp_path):
    open_page(browser, tmp_path, ["wavenet"])
    tree = "window.dilatedExplorer.tree"
    first, last = browser.evaluate(f"{tree}.visibleSteps()")
    assert first <= 4095 - 3070 and last >= 4095 and last - first < 3300  # the whole field, fitted
    assert browser.evaluate(f"{tree}.drawn.edges") == 0  # too many steps for circles: ticks per pixel
    x = browser.evaluate("document.querySelector('#tree').clientWidth / 2")  # the pointer, in the canvas
    under_pointer = browser.evaluate(f"{tree}.stepAt({x})")
    browser.wheel("#tree", -100, times=12)  # the wheel zooms around the pointer
    near_first, near_last = browser.evaluate(f"{tree}.visibleSteps()")
    assert (last - first) / (near_last - near_first) == pytest.approx(1.25**12)
    assert browser.evaluate(f"{tree}.stepAt({x})") == pytest.approx(under_pointer)  # the step under it stays
    for _ in range(3):
        browser.click("#zoom-in")
    near_first, near_last = browser.evaluate(f"{tree}.visibleSteps()")
    assert near_last - near_first < 40
    assert browser.evaluate(f"{tree}.drawn.edges") > 0 and browser.evaluate(f"{tree}.drawn.nodes") > 100  # circles
    scale = browser.evaluate(f"{tree}.scale")
    browser.drag("#tree", 200)
    panned = browser.evaluate(f"{tree}.visibleSteps()")
    assert panned[0] == pytest.approx(near_first - 200 / scale, abs=1e-6)  # dragging right shows older steps
    browser.click("#fit-input")
    whole = browser.evaluate(f"{tree}.visibleSteps()")
    assert whole[0] <= 0 and whole[1] >= 4095


def test_an_edited_stack_shows_what_summary_says_of_its_export(browser, example_page, tmp_path, capsys):
    browser.type("#design-target", "4096")  # a long hole-free stack, at 4,096 steps
    browser.type("#design-kernel", "2")
    browser.type("#design-channels", "16")
    browser.click("#propose")
    browser.click('#proposals button[data-proposal="0"]')
    browser.type("#input-length", "4096")
    exported = tmp_path / "stack.yaml"
    exported.write_text(browser.value("#yaml"))
    data = summary_json([str(exported)])
    assert data["receptive_field"] == 4096 and data["layers"][1]["kind"] == "ReLU"  # conv + ReLU blocks, as designed
    assert numbers(browser, STATS) == page_numbers(data, STATS)
    assert graph_numbers_equal_the_summary(browser, data) == 12  # the convs, named as the exported stack names them
    milliseconds = timed(
        browser,
        "const e = document.querySelector('#input-length'); e.value = String(4096 - 7 * i); "
        "e.dispatchEvent(new Event('input', {bubbles: true}))",
    )
    with capsys.disabled():
        print(
            f"\nexplorer timing, 12-layer stack at 4,096 steps: change the input length {milliseconds:.1f} ms (median)"
        )


class CumSum(nn.Module):
    """Every step sees every past step: no per-step tree to draw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(-1)


def test_a_model_without_a_per_step_tree_keeps_its_numbers_and_says_why(browser, tmp_path):
    state = target_state(Target(nn.Sequential(CumSum(), nn.Conv1d(1, 2, 3)), (1, 20), "m"))
    path = tmp_path / "past.html"
    path.write_text(page(state))
    browser.open(path.as_uri())
    assert browser.errors == [] and browser.text("#error") == ""
    assert numbers(browser, ("rf", "params")) == {"rf": "20", "params": "8"}
    assert "from 0 (CumSum) on, outputs see every past step" in browser.text("#notes")
    assert browser.evaluate("window.dilatedExplorer.tree.error") == f"no tree: {state['graph_error']}"
    browser.click("#propose")  # a proposal turns the read-only page into an editable stack
    browser.click('#proposals button[data-proposal="0"]')
    assert browser.evaluate("document.querySelector('#editor').hidden") is False
    assert browser.text("#rf") == "20" and browser.evaluate("window.dilatedExplorer.tree.error") is None


def test_unknown_causality_is_shown_as_such(browser, tmp_path):
    path = tmp_path / "unknown.html"
    path.write_text(page(target_state(Target(nn.Sequential(nn.Conv1d(1, 2, 3, padding=2), HandDelay()), (1, 20), "m"))))
    browser.open(path.as_uri())
    assert browser.errors == [] and browser.text("#causal") == "unknown"
    assert "Causal: unknown (layer 1 is not followed" in browser.text("#notes")
