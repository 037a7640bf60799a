"""The explorer page: self-contained, its JavaScript geometry and design equal to Python's, edited in a real
headless Chromium (skipped, with the reason, where there is none)."""

import importlib.util
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
from dilated._resolve import model_from_config, resolve_target
from dilated.cli import main
from dilated.design import design
from dilated.explore import page, stack_state, target_state, write_explorer
from dilated.geometry import Layer, dependencies, stack_geometry
from dilated.summaries import summary
from helpers import HandDelay

ARTIFACTS = Path(__file__).parent.parent / "docs" / "images"


def test_the_page_is_self_contained(tmp_path):
    text = write_explorer(tmp_path / "explorer.html").read_text()
    assert "__STACK__" not in text and "__SCRIPT__" not in text and "__TITLE__" not in text
    assert not re.search(r"<script[^>]+src=|<link|@import|url\(|fetch\(|XMLHttpRequest|WebSocket", text)
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}  # a namespace name
    assert "default-src 'none'" in text  # the page's own policy forbids loading anything


def test_the_page_opens_on_existing_models():
    seed = target_state(resolve_target("example-dilated"))
    assert (seed["input_channels"], seed["input_length"]) == (2, 200)
    assert [(la["kernel_size"], la["dilation"], la["padding"], la["channels"]) for la in seed["layers"]] == [
        (5, 2, "causal", 5),
        (5, 4, "causal", 5),
        (1, 1, "valid", 1),
    ]
    assert seed["notes"] == []
    tcn = target_state(resolve_target("tcn"))
    assert [la["dilation"] for la in tcn["layers"]] == [2 ** (i // 2) for i in range(16)]
    assert {la["channels"] for la in tcn["layers"]} == {25} and "66,650" in tcn["notes"][0]
    translob = target_state(resolve_target("translob"))
    assert len(translob["layers"]) == 5 and "whole input" in translob["notes"][0]


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
    assert (state["input_channels"], state["input_length"]) == (3, 64)
    assert [(la["kind"], la["kernel_size"], la["stride"], la["channels"]) for la in state["layers"]][:2] == [
        ("conv", 3, 1, 4),
        ("maxpool", 2, 2, None),
    ]


class Padded(nn.Module):
    """A module that declares its time-axis geometry: a k=3 conv with explicit (left, right) padding."""

    def __init__(self, padding: tuple[int, int]) -> None:
        super().__init__()
        self.geometry = Layer(3, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_explicit_paddings_become_the_pages_spellings():
    state = stack_state(
        summary(nn.Sequential(Padded((2, 0)), Padded((1, 1)), nn.Conv1d(1, 2, 3, padding=2)), (1, 20)), "m", (1, 20)
    )
    assert [la["padding"] for la in state["layers"]] == ["causal", 1, 2]
    with pytest.raises(ValueError, match="the explorer edits paddings causal, same, valid or one int"):
        stack_state(summary(nn.Sequential(Padded((3, 1))), (1, 20)), "m", (1, 20))


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


def numbers(browser) -> dict:
    return {key: browser.text(f"#{key}") for key in ("rf", "jump", "outlen", "params", "coverage")}


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
    assert browser.evaluate("document.querySelectorAll('#tree circle.hole').length") == 12
    assert browser.evaluate("document.querySelectorAll('#tree circle.lit').length") >= 13 + 5 + 1

    browser.type('input[data-layer="0"][data-field="dilation"]', "1")  # the theorem's fix: dilation 1 first...
    assert numbers(browser) == expected_numbers([conv(5, 1), conv(5, 4), dense], 200, 191)
    browser.type('input[data-layer="1"][data-field="dilation"]', "5")  # ...then 5: 25 steps, all read
    assert numbers(browser) == expected_numbers([conv(5, 1), conv(5, 5), dense], 200, 191) | {"coverage": "25 of 25"}
    assert browser.evaluate("document.querySelectorAll('#tree circle.hole').length") == 0

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


def test_an_impossible_edit_shows_the_geometry_error(browser, example_page):
    browser.type('input[data-layer="0"][data-field="stride"]', "2")  # stride 2 with dilation 2: Keras refuses
    assert "Keras refuses stride=2 together with dilation=2" in browser.text("#error")
    assert browser.text("#rf") == "-"


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
            r'<script id="initial-stack" type="application/json">(.*?)</script>',
            (tmp_path / "t.html").read_text(),
            re.S,
        ).group(1)
    )
    assert state == target_state(resolve_target("tcn"))
    assert page(state) == (tmp_path / "t.html").read_text()


def test_the_page_state_carries_the_causality_line():
    model = nn.Sequential(nn.Conv1d(1, 2, 3, padding=2), HandDelay())
    state = stack_state(summary(model, (1, 20)), "m", (1, 20))
    assert state["notes"][-1].startswith("Causal: unknown (layer 1 is not followed")
    assert json.dumps(state["notes"][-1]) in page(state)
