"""dilated.from_keras: Keras 3 models (torch backend) converted to dilated graphs give the Keras outputs, stream,
export to ONNX, summarise, draw and round-trip through `dilated convert`."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from example_models import EXAMPLES, check, example_keras

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
import dilated  # noqa: E402
from dilated._layer_graph import LayerGraph  # noqa: E402
from dilated.keras_bridge._convert import SUPPORTED, check_conversion, from_keras, load_converted, save_converted  # noqa: E402
from dilated.streaming import Backend  # noqa: E402
from dilated.streaming._export import export_step  # noqa: E402
from references import keras_wavenet  # noqa: E402

L = keras.layers


def keras_output(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(x)))


def converted_output(graph: LayerGraph, x: np.ndarray) -> np.ndarray:
    """Run ``graph`` on a Keras-layout input and give the output back in the Keras layout."""
    with torch.no_grad():
        y = graph(torch.from_numpy(x).transpose(1, 2))
    return (y.transpose(1, 2) if y.dim() == 3 else y).numpy()


def randomise(model, seed: int = 0):
    """Random weights everywhere (positive variances), so no layer converts right by accident of its init."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        value = rng.uniform(0.5, 2.0, shape) if "variance" in w.path else rng.normal(0, 0.5, shape)
        w.assign(value.astype("float32"))
    return model


def inputs(length: int, channels: int, batch: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, length, channels)).astype("float32")


def assert_converts(model, length: int = 24, channels: int = 4) -> LayerGraph:
    graph = from_keras(model, check=False)
    x = inputs(length, channels)
    expected, actual = keras_output(model, x), converted_output(graph, x)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    return graph


def streamed(graph: LayerGraph, x: np.ndarray, backend: Backend = "auto") -> tuple[np.ndarray, str]:
    """Step ``x`` (Keras layout, batch 1) through ``dilated.stream`` one step at a time."""
    s = dilated.stream(graph, 1, backend=backend)
    ys = [s.step(torch.from_numpy(x[:, t])) for t in range(x.shape[1])]
    return torch.stack(ys, dim=1).numpy(), type(s).__name__


# ---- the example's two Keras models -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dilated", "strided"])
def test_example_models_convert_to_the_bundled_examples(kind):
    model = randomise(example_keras(kind))
    graph = assert_converts(model, 200, 2)
    check(dilated.summary(graph, (2, 200)), kind, "channels_first")  # fields 25 / 13, jumps 1 / 8, 191 params
    example = dilated.summary(*_target(f"example-{kind}"))
    assert [r.output_shape for r in example.layers] == EXAMPLES[kind]["shapes"]
    assert [r.geometry for r in dilated.summary(graph, (2, 200)).layers] == [r.geometry for r in example.layers]


def _target(name: str):
    from dilated._resolve import resolve_target

    target = resolve_target(name)
    return target.model, target.input_shape


def test_example_dilated_streams_and_example_strided_is_refused():
    x = inputs(60, 2, batch=1)
    dilated_model = randomise(example_keras("dilated"))
    y, engine = streamed(from_keras(dilated_model), x)
    assert engine == "FastStream"
    np.testing.assert_allclose(y, keras_output(dilated_model, x), atol=1e-5)
    with pytest.raises(ValueError, match=r"cannot stream layer 'layers.conv1d(_\d+)?' \(Conv1d\).*s=2 causal"):
        dilated.stream(from_keras(example_keras("strided")), 1)


# ---- a functional WaveNet ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wavenet():
    model = randomise(keras_wavenet(channels=8), seed=3)
    return model, from_keras(model)


def test_functional_wavenet_converts_exactly(wavenet):
    model, graph = wavenet
    x = inputs(200, 1)
    np.testing.assert_allclose(converted_output(graph, x), keras_output(model, x), atol=1e-5)
    # the last unit's residual conv feeds nothing, so Keras leaves it out of the model
    assert sum(p.numel() for p in graph.parameters()) == model.count_params() == 2_457
    assert len([n for n in graph.spec.nodes if n.type == "conv1d"]) == 1 + 6 * 4 - 1 + 1


@pytest.mark.parametrize("backend,engine", [("auto", "FastStream"), ("eager", "EagerStream")])
def test_functional_wavenet_streams_equal_to_keras_on_the_whole_sequence(wavenet, backend, engine):
    model, graph = wavenet
    x = inputs(150, 1, batch=1, seed=5)
    y, used = streamed(graph, x, backend)
    assert used == engine
    np.testing.assert_allclose(y, keras_output(model, x), atol=1e-5)


def test_functional_wavenet_exports_its_step_to_onnx(wavenet, tmp_path):
    pytest.importorskip("onnxruntime")
    _, graph = wavenet
    exported = export_step(graph, tmp_path / "step.onnx", channels=1, check_steps=70)
    assert exported.path.stat().st_size > 10_000
    assert len(exported.state_names) == 13  # the causal input conv and 2 x 6 gated convs
    assert exported.steps_checked == 70 and exported.max_abs_diff < 1e-5


def test_functional_wavenet_summarises_and_draws(wavenet, tmp_path):
    model, graph = wavenet
    s = dilated.summary(graph, (1, 128))
    assert s.total_params == model.count_params()
    rows = {row.name: row for row in s.layers}
    assert rows["layers.out"].output_shape == (None, 1, 128)
    assert rows["layers.filter_5"].geometry[0].dilation == 32
    diagram = dilated.draw(graph, path=tmp_path / "wavenet.png", input_shape=(1, 64))
    assert (tmp_path / "wavenet.png").stat().st_size > 1_000 and diagram.receptive_field >= 65


# ---- random Sequential Conv1D stacks -------------------------------------------------------------------------------

activations = st.sampled_from(["linear", "relu", "tanh", "sigmoid", "gelu", "elu", "softmax", "swish", "selu"])
conv_layers = st.tuples(
    st.integers(1, 5),
    st.integers(1, 2),
    st.integers(1, 4),
    st.sampled_from(["causal", "same", "valid"]),
    st.integers(1, 3),
    st.sampled_from([1, 2]),
    activations,
    st.booleans(),
)


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")  # a 1-channel softmax, drawn at random
@settings(max_examples=25)
@given(st.lists(conv_layers, min_size=1, max_size=4), st.integers(30, 60), st.integers(0, 10_000))
def test_random_keras_conv_stacks_convert_exactly(specs, length, seed):
    layers, channels = [keras.Input((length, 2))], 2
    for k, stride, dilation, padding, width, groups, activation, bias in specs:
        groups = groups if channels % groups == 0 else 1
        layers.append(
            L.Conv1D(
                width * groups,
                k,
                strides=stride,
                dilation_rate=1 if stride > 1 else dilation,
                padding=padding,
                groups=groups,
                activation=activation,
                use_bias=bias,
            )
        )
        channels = width * groups
    try:
        model = keras.Sequential(layers)
    except ValueError:  # Keras finds the input too short for a valid stack
        return
    randomise(model, seed)
    assert_converts(model, length, 2)


# ---- every supported layer -----------------------------------------------------------------------------------------


def two_branches(merge):
    x = keras.Input((24, 4))
    a, b = L.Conv1D(4, 3, padding="causal")(x), L.Conv1D(4, 2, padding="causal", dilation_rate=2)(x)
    return keras.Model(x, merge([a, b]))


def sequential(*layers, channels: int = 4):
    return keras.Sequential([keras.Input((24, channels)), L.Conv1D(6, 3, padding="same"), *layers])


def nested_and_shared():
    shared, inner = L.Dense(4, activation="tanh"), keras.Sequential([keras.Input((24, 4)), L.Conv1D(4, 3)])
    x = keras.Input((24, 4))
    return keras.Model(x, L.Add()([shared(x), shared(L.ZeroPadding1D((2, 0))(inner(x)))]))


LAYER_CASES = {
    "Dense": lambda: sequential(L.Dense(3, activation="relu")),
    "Dense-after-global-pooling": lambda: sequential(L.GlobalAveragePooling1D(), L.Dense(3, activation="softmax")),
    "Activation": lambda: sequential(L.Activation("gelu")),
    "ReLU": lambda: sequential(L.ReLU(), L.ReLU(max_value=6.0), L.ReLU(negative_slope=0.1)),
    "LeakyReLU": lambda: sequential(L.LeakyReLU(negative_slope=0.3)),
    "ELU": lambda: sequential(L.ELU(alpha=0.5)),
    "Softmax": lambda: sequential(L.Softmax()),
    "Add": lambda: two_branches(L.Add()),
    "Subtract": lambda: two_branches(L.Subtract()),
    "Multiply": lambda: two_branches(L.Multiply()),
    "Average": lambda: two_branches(L.Average()),
    "Maximum": lambda: two_branches(L.Maximum()),
    "Minimum": lambda: two_branches(L.Minimum()),
    "Concatenate": lambda: two_branches(L.Concatenate()),
    "Concatenate-time": lambda: two_branches(L.Concatenate(axis=1)),
    "BatchNormalization": lambda: sequential(L.BatchNormalization(), L.BatchNormalization(center=False, scale=False)),
    "BatchNormalization-features": lambda: sequential(L.GlobalMaxPooling1D(), L.BatchNormalization(epsilon=0.1)),
    "LayerNormalization": lambda: sequential(L.LayerNormalization(), L.LayerNormalization(center=False)),
    "Dropout": lambda: sequential(L.Dropout(0.5), L.SpatialDropout1D(0.5)),
    "SpatialDropout1D": lambda: sequential(L.SpatialDropout1D(0.3)),
    "MaxPooling1D": lambda: sequential(L.MaxPooling1D(2), L.MaxPooling1D(3, strides=1, padding="same")),
    "AveragePooling1D": lambda: sequential(
        L.AveragePooling1D(3, strides=1, padding="same"), L.AveragePooling1D(2, strides=3)
    ),
    "Cropping1D": lambda: sequential(L.Cropping1D((2, 1))),
    "ZeroPadding1D": lambda: sequential(L.ZeroPadding1D((3, 1)), L.Conv1D(2, 4)),
    "GlobalAveragePooling1D": lambda: sequential(L.GlobalAveragePooling1D(keepdims=True)),
    "GlobalMaxPooling1D": lambda: sequential(L.GlobalMaxPooling1D()),
    "Conv1D": lambda: sequential(L.Conv1D(4, 3, strides=2, padding="same", groups=2, use_bias=False)),
    "nested-model-and-shared-layer": nested_and_shared,
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_every_supported_layer_converts_exactly(case):
    assert_converts(randomise(LAYER_CASES[case](), seed=len(case)))


def test_the_cases_cover_every_supported_layer():
    covered = set()
    for make in LAYER_CASES.values():
        model = make()
        covered |= {type(layer).__name__ for layer in model._flatten_layers(include_self=False)}
    assert set(SUPPORTED) <= covered


KERAS_ACTIVATIONS = [
    "linear",
    "relu",
    "relu6",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "gelu",
    "elu",
    "selu",
    "celu",
    "softplus",
    "softsign",
    "silu",
    "swish",
    "hard_silu",
    "hard_swish",
    "mish",
    "leaky_relu",
    "softmax",
    "log_softmax",
    "exponential",
    "hard_tanh",
    "tanh_shrink",
]


@pytest.mark.parametrize("name", KERAS_ACTIVATIONS)
def test_every_activation_converts_exactly(name):
    assert_converts(randomise(sequential(L.Activation(name)), seed=7))


def test_shared_layers_share_one_module_and_its_weights():
    graph = from_keras(nested_and_shared())
    shared = [n for n in graph.spec.nodes if n.type == "dense"]
    assert len(shared) == 2 and shared[0].module_name == shared[1].module_name
    assert len([k for k in graph.state_dict() if k.endswith("weight")]) == 2  # the dense and the inner conv


def test_zero_padding_then_valid_conv_streams_exactly_or_is_refused():
    model = randomise(keras.Sequential([keras.Input((None, 2)), L.ZeroPadding1D((2, 0)), L.Conv1D(3, 3)]))
    x = inputs(30, 2, batch=1)
    try:
        y, _ = streamed(from_keras(model), x)
    except ValueError as error:
        assert "cannot stream" in str(error)
    else:
        np.testing.assert_allclose(y, keras_output(model, x), atol=1e-5)


def test_the_conversion_check_catches_a_wrong_weight():
    model = randomise(example_keras("dilated"))
    graph = from_keras(model)
    assert check_conversion(model, graph) < 1e-5
    dense = next(node.module_name for node in graph.spec.nodes if node.type == "dense")
    with torch.no_grad():
        graph.layers[dense].bias += 0.1
    with pytest.raises(ValueError, match="differs from the Keras model by 0.1"):
        check_conversion(model, graph)


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: sequential(L.LSTM(3, return_sequences=True)),
            r"Keras layer 'lstm(_\d+)?' \(LSTM\) has no dilated "
            "equivalent; supported: Conv1D, Dense",
        ),
        (lambda: sequential(L.Conv1DTranspose(2, 3)), r"\(Conv1DTranspose\) has no dilated equivalent"),
        (lambda: sequential(type("MyConv", (L.Conv1D,), {})(2, 3)), r"\(MyConv\) has no dilated equivalent"),
        (lambda: sequential(L.Activation("sparsemax")), "activation 'sparsemax' has no dilated equivalent"),
        (lambda: sequential(L.LayerNormalization(rms_scaling=True)), "rms_scaling=True"),
        (lambda: sequential(L.BatchNormalization(axis=1)), r"axis 1; only the features axis \(-1\) converts"),
        (lambda: sequential(L.ReLU(threshold=0.5)), "ReLU with max_value=None"),
        (
            lambda: sequential(L.AveragePooling1D(2, strides=1, padding="same")),
            "Keras backends average the padded edge differently",
        ),
        (lambda: keras.Sequential([L.Dense(2)]), "is not built"),
    ],
)
def test_unsupported_layers_are_named_in_one_line(make, message):
    with pytest.raises(ValueError, match=message) as info:
        from_keras(make())
    assert "\n" not in str(info.value)


# ---- files and the CLI ---------------------------------------------------------------------------------------------


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dilated.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_keras_file_round_trip_through_the_cli(tmp_path):
    model = randomise(keras_wavenet(channels=8), seed=11)
    model.save(tmp_path / "wavenet.keras")
    result = cli("convert", "wavenet.keras", "-o", "out/wavenet.safetensors", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote out/wavenet.safetensors (2,457 parameters) and out/wavenet.yaml (50 nodes)\n"
    x = inputs(100, 1)
    for path in ("out/wavenet.yaml", "out/wavenet.safetensors"):
        graph = load_converted(tmp_path / path)
        np.testing.assert_allclose(converted_output(graph, x), keras_output(model, x), atol=1e-5)
    summary = cli("summary", "out/wavenet.yaml", "--input", "1,128", cwd=tmp_path)
    assert summary.returncode == 0 and "Total params: 2,457" in summary.stdout and "k=2 d=32 causal" in summary.stdout
    drawn = cli("draw", "out/wavenet.yaml", "--input", "1,64", "-o", "wavenet.png", cwd=tmp_path)
    assert drawn.returncode == 0 and (tmp_path / "wavenet.png").stat().st_size > 1_000
    for target in ("out/wavenet.yaml", "wavenet.keras", "example-dilated"):
        exported = cli("export", target, "-o", "step.onnx", "--check-steps", "8", cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
        assert "onnxruntime equals the torch stream on 8 random steps" in exported.stdout


def test_saved_graph_rebuilds_without_keras_and_refuses_a_mismatched_file(tmp_path):
    model = randomise(example_keras("dilated"))
    weights, spec = save_converted(from_keras(model), tmp_path / "example.safetensors")
    code = (
        f"import sys, dilated.keras_bridge._convert as k; g = k.load_converted({str(spec)!r}); "
        "print(len(g.spec.nodes), 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["3", "False"], result.stderr
    spec.write_text(
        spec.read_text().replace("channels: 5, kernel_size: 5, dilation: 2", "channels: 6, kernel_size: 5, dilation: 2")
    )
    with pytest.raises(ValueError, match=r"conv1d(_\d+)?.weight has shape \(5, 2, 5\), the spec makes \(6, 2, 5\)"):
        load_converted(spec)


# ---- keras-tcn (needs TensorFlow installed; skipped without it) ---------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(kernel_size=2, nb_stacks=2, use_skip_connections=False, activation="tanh"),
        dict(nb_filters=[6, 6], dilations=(1, 2), use_layer_norm=True, return_sequences=False),
        dict(kernel_size=3, use_batch_norm=True, padding="same"),
    ],
)
def test_keras_tcn_converts_and_streams(options):
    tcn = pytest.importorskip("tcn", reason="keras-tcn (pip install keras-tcn) imports TensorFlow")
    options = {"nb_filters": 8, "kernel_size": 2, "dilations": (1, 2, 4), "return_sequences": True, **options}
    model = randomise(keras.Sequential([keras.Input((40, 3)), tcn.TCN(**options), L.Dense(2)]), seed=9)
    graph = assert_converts(model, 40, 3)
    if options.get("padding", "causal") != "causal":
        with pytest.raises(ValueError, match="cannot stream"):
            dilated.stream(graph, 1)
        return
    x = inputs(40, 3, batch=1)
    y, _ = streamed(graph, x)
    expected = keras_output(model, x)
    if options["return_sequences"]:
        np.testing.assert_allclose(y, expected, atol=1e-5)
    else:  # the stream's step t is the model's output on the first t + 1 steps
        np.testing.assert_allclose(y[:, -1], expected, atol=1e-5)
