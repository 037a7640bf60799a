"""dilated.design: hole-free schedules checked against dilated.geometry's taps, brute force, torch and the CLI."""

import itertools
import subprocess
import sys

import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st

import dilated
from dilated._resolve import model_from_config, read_yaml, resolve_target
from dilated.cli import main
from dilated.design import BLOCKS, block_cost, design, explain_holes, is_hole_free
from dilated.explore import target_summary
from dilated.geometry import Layer, causal_stack, dependencies, receptive_field


def fed_offsets(layers: list[Layer]) -> set[int]:
    """Lags that feed the last output of a stride-1 causal stack, from dilated.geometry's taps."""
    field = receptive_field(layers)
    rows = dependencies(layers, field, field - 1)
    return {field - 1 - step for step in rows[0]}


def sumset(kernel_size: int, dilations: tuple[int, ...]) -> set[int]:
    """The definition: every sum of one tap offset per conv."""
    offsets = {0}
    for d in dilations:
        offsets = {o + j * d for o in offsets for j in range(kernel_size)}
    return offsets


@given(st.integers(2, 6), st.lists(st.integers(1, 40), min_size=1, max_size=5))
def test_the_hole_free_condition_is_exactly_what_the_taps_read(kernel_size, dilations):
    layers = causal_stack(kernel_size, dilations)
    fed = fed_offsets(layers)
    assert fed == sumset(kernel_size, tuple(dilations))
    assert fed == fed_offsets(causal_stack(kernel_size, sorted(dilations)))  # order changes nothing
    assert is_hole_free(kernel_size, dilations) == (fed == set(range(receptive_field(layers))))


@given(
    st.integers(2, 5000),
    st.integers(2, 7),
    st.sampled_from(sorted(BLOCKS)),
    st.one_of(st.none(), st.integers(1, 600)),
    st.one_of(st.none(), st.integers(1, 40)),
)
def test_every_proposal_reads_its_whole_field(target, kernel_size, block, max_dilation, max_layers):
    try:
        proposals = design(target, kernel_size, max_layers=max_layers, max_dilation=max_dilation, block=block)
    except ValueError as error:
        assert "unreachable" in str(error) and max_layers is not None
        return
    assert 1 <= len(proposals) <= 5
    for p in proposals:
        layers = p.geometry
        assert len(layers) == BLOCKS[block] * p.layers
        assert receptive_field(layers) == p.receptive_field >= target
        assert fed_offsets(layers) == set(range(p.receptive_field))  # no holes, by geometry's own taps
        assert max_layers is None or p.layers <= max_layers
        assert max_dilation is None or p.max_dilation <= max_dilation
        assert p.overshoot < BLOCKS[block] * (kernel_size - 1) or set(p.dilations) == {1}  # the least field


def brute_force(target, kernels, max_layers, max_dilation, block, top):
    """Best schedule per (kernel, block count) over every multiset of dilations, ranked as design() ranks."""
    m = BLOCKS[block]
    best = {}
    for k in kernels:
        for layers in range(1, max_layers + 1):
            for dilations in itertools.combinations_with_replacement(range(1, (max_dilation or target) + 1), layers):
                convs = tuple(d for d in dilations for _ in range(m))
                field = 1 + (k - 1) * sum(convs)
                if field < target or sumset(k, convs) != set(range(field)):
                    continue
                params = flops = 0
                width = 1
                for _ in dilations:
                    p, macs = block_cost(block, width, 8, k)
                    params, flops, width = params + p, flops + 2 * macs, 8
                key = (layers, params, flops, field - target, dilations[-1], k, tuple(-d for d in dilations))
                best[k, layers] = min(best.get((k, layers), key), key)
    return [(key[5], tuple(-d for d in key[6])) for key in sorted(best.values())[:top]]


@pytest.mark.parametrize("block", ["plain", "residual2"])
@pytest.mark.parametrize("target", [2, 5, 9, 16, 23])
@pytest.mark.parametrize("kernels,max_dilation", [((2,), None), ((3,), None), ((2, 3), None), ((2,), 3)])
def test_the_ranking_is_optimal_by_brute_force(target, kernels, max_dilation, block):
    max_layers = 4
    expected = brute_force(target, kernels, max_layers, max_dilation, block, top=8)
    try:
        got = design(target, kernels, max_layers=max_layers, channels=8, max_dilation=max_dilation, block=block, top=8)
    except ValueError as error:
        assert expected == [] and "unreachable" in str(error)
        return
    assert [(p.kernel_size, p.dilations) for p in got] == expected


def test_the_known_optima():
    assert design(4096, 2)[0].dilations == tuple(2**i for i in range(12))  # WaveNet's doubling, exactly 4096
    assert design(25, 5, max_layers=2)[0].dilations == (1, 5)  # the example's field with no holes
    best = design(1000, 3)[0]
    assert (best.layers, best.receptive_field, best.dilations) == (7, 1001, (1, 3, 9, 27, 81, 189, 190))
    tcn = design(3061, 7, block="residual2")[0]  # locuslab's default TCN field takes 8 doubling levels, or 4
    assert (tcn.layers, tcn.receptive_field, tcn.dilations) == (4, 3061, (1, 13, 120, 121))


def test_sorting_by_params_prefers_the_cheaper_kernel():
    by_layers = design(100, (2, 3), top=2)
    assert [(p.kernel_size, p.layers) for p in by_layers] == [(3, 5), (3, 6)]
    by_params = design(100, (2, 3), top=2, sort_by=["params"])
    assert [(p.kernel_size, p.layers, p.params) for p in by_params] == [(3, 5, 12544), (2, 7, 12576)]


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_params_and_field_are_the_built_models(block):
    for p in design(200, 3, block=block, channels=6, input_channels=3, top=2):
        model = dilated.build_model("dilated_stack", **p.config()["options"])
        assert sum(t.numel() for t in model.parameters()) == p.params
        assert model.receptive_field == p.receptive_field and model.hole_free


def test_the_written_config_is_read_by_summary_draw_stream_and_explore(tmp_path, capsys):
    path = tmp_path / "stack.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dilated.cli",
            "design",
            "--receptive-field",
            "100",
            "--kernel-size",
            "3",
            "--channels",
            "8",
            "-o",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split()[:5] == ["1", "5", "3", "101", "1"] and lines[2].endswith("1, 3, 9, 18, 19")
    assert read_yaml(path) == {
        "model": "dilated_stack",
        "options": {"channels": 8, "kernel_size": 3, "dilations": [1, 3, 9, 18, 19], "block": "plain"},
    }
    assert main(["summary", str(path)]) == 0
    assert "Receptive field: 101 input steps (input length 128)" in capsys.readouterr().out
    assert main(["draw", str(path), "-o", str(tmp_path / "t.png")]) == 0
    assert "receptive field 101 steps" in capsys.readouterr().out
    model = resolve_target(str(path)).model.eval()
    stream = dilated.stream(model)
    x = torch.randn(1, 1, 150)
    torch.testing.assert_close(stream.step_many(x), model(x), atol=1e-5, rtol=1e-5)
    assert main(["explore", str(path), "-o", str(tmp_path / "p.html")]) == 0
    assert '"dilation": 19' in (tmp_path / "p.html").read_text()


@pytest.mark.slow
def test_the_written_config_trains(tmp_path):
    """`dilated train` on the design output: the adding problem fixes 2 input channels and a 1-value head."""
    path = tmp_path / "stack.yaml"
    path.write_text(design(50, 2, channels=8, block="residual2")[0].yaml())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dilated.cli",
            "train",
            str(path),
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
            "--override",
            "data.kind=adding",
            "--override",
            "data.seq_len=50",
            "--override",
            "data.train_size=64",
            "--override",
            "data.val_size=16",
            "--override",
            "data.test_size=16",
            "--override",
            "training.max_epochs=1",
            "--override",
            "training.batch_size=16",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = read_yaml(tmp_path / "run" / "config.yaml")
    assert config["model"] == "dilated_stack" and config["options"]["dilations"] == [1, 3, 9, 12]
    model = model_from_config(
        {
            "model": "dilated_stack",
            "options": {**config["options"], "input_channels": 2, "output_size": 1, "last_step_only": True},
        }
    ).model
    assert model.receptive_field == 51


def test_the_seed_stack_holes_are_explained():
    coverage = explain_holes(target_summary(resolve_target("example-dilated")).geometry)
    assert (coverage.receptive_field, coverage.fed) == (25, 13)
    assert coverage.missing == tuple(range(1, 25, 2))
    text = str(coverage)
    assert "reads 13 of the 25 steps" in text and "t-1, t-3" in text
    assert "layer 0 (conv k=5 d=2 s=1 causal): its taps lie 2 input steps apart" in text
    assert "dilations 1, 5" in text


def test_holes_that_a_later_layer_fills():
    coverage = explain_holes(causal_stack(2, [2, 1]))
    assert not coverage.has_holes and "layer 1 (conv k=2 d=1 s=1 causal) fills the holes" in str(coverage)


def test_explain_follows_strides_and_skips_pointwise_layers():
    strided = [Layer(5, stride=2, padding="causal"), Layer(5, stride=4, padding="causal"), Layer(1)]
    assert str(explain_holes(strided)).startswith("reads 13 of the 13 steps")
    holes = explain_holes([Layer(2, stride=4, padding="causal"), Layer(2, padding="causal")])
    assert (holes.receptive_field, holes.fed, holes.missing) == (6, 4, (2, 3))  # lags 0, 1, 4, 5 read


def test_cli_explain_names_the_target(capsys):
    assert main(["design", "--explain", "example-dilated"]) == 0
    assert capsys.readouterr().out.startswith("example-dilated: reads 13 of the 25 steps under its receptive field")


def test_proposal_yaml_round_trips():
    p = design(300, 4, channels=16, input_channels=3, block="residual1")[0]
    config = yaml.safe_load(p.yaml())
    assert config == p.config() and config["options"]["input_channels"] == 3
    assert model_from_config(config).model.receptive_field == p.receptive_field
