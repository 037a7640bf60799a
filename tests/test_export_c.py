"""The exported C step: strict C99 that equals the model's forward, two prefixed models in one binary, the CLI."""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from pytorch_tcn import TCN as PytorchTCN
from torch import nn

import dilated
from dilated.keras_bridge._adapter import import_keras
from dilated.layers import Conv1d
from dilated.models import build_model
from dilated.streaming import ExportedC, export_c, export_step
from dilated.streaming._export_c import EMITTERS, Library, build
from dilated.streaming._fast.instructions import OPS
from helpers import dilated_cli
from model_grammar import models
from streaming_helpers import LocuslabTCN, offline

STRICT = ("-O2", "-std=c99", "-Wall", "-Werror", "-pedantic")
TOL = 1e-4


class Codes(nn.Module):
    """Integer inputs (mu-law codes): an embedding, a one-hot branch, a layer norm and a sum over channels."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.conv = Conv1d(14, 6, 3, dilation=2)
        self.norm = nn.LayerNorm(6)

    def forward(self, q: torch.Tensor) -> torch.Tensor:  # (B, T) int64
        e = self.embedding(q).transpose(1, 2)  # (B, 4, T)
        h = nn.functional.one_hot(q, 10).float().movedim(-1, 1)  # (B, 10, T)
        h = self.norm(torch.tanh(self.conv(torch.cat([e, h], dim=1))).transpose(1, 2)).transpose(1, 2)
        return torch.cat([nn.functional.elu(h), h.sum(1, keepdim=True)], dim=1)  # (B, 7, T)


def keras_stack() -> nn.Module:
    keras = import_keras()
    model = keras.Sequential(
        [
            keras.Input((32, 2)),
            keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
            keras.layers.Conv1D(4, 2, padding="causal", dilation_rate=4, activation="sigmoid"),
            keras.layers.Dense(1),
        ]
    )
    return dilated.from_keras(model)


# name -> (model factory, one step's x of one stream, the model's other arguments)
MODELS: dict[str, Callable[[], tuple[nn.Module, torch.Tensor, dict[str, Any]]]] = {
    "tcn": lambda: (
        build_model("tcn", input_channels=2, num_channels=(8, 8, 8), kernel_size=3, dropout=0.0),
        torch.zeros(1, 2),
        {},
    ),
    "wavenet-gated-global": lambda: (
        build_model(
            "wavenet",
            layers_per_stack=3,
            stacks=2,
            residual_channels=8,
            dilation_channels=8,
            skip_channels=16,
            quantization_channels=16,
            global_channels=3,
        ),
        torch.zeros(1, 16),
        {"global_condition": torch.randn(1, 3)},
    ),
    "dilated-stack": lambda: (build_model("dilated_stack"), torch.zeros(1, 1), {}),
    "keras-converted": lambda: (keras_stack(), torch.zeros(1, 2), {}),
    "locuslab": lambda: (LocuslabTCN(3, [6, 6], kernel_size=3, dropout=0.0), torch.zeros(1, 3), {}),
    "pytorch-tcn": lambda: (
        PytorchTCN(3, [8, 8], kernel_size=3, causal=True, use_norm="weight_norm", activation="gelu"),
        torch.zeros(1, 3),
        {},
    ),
    "mu-law-codes": lambda: (Codes(), torch.zeros(1, dtype=torch.int64), {}),
    # convs wider than one tile of 128 outputs, and tap counts that the partial sums do not divide
    "wide-convs": lambda: (
        nn.Sequential(Conv1d(3, 200, 3, dilation=2), nn.ReLU(), Conv1d(200, 130, 1)),
        torch.zeros(1, 3),
        {},
    ),
}


def random_input(x_t: torch.Tensor, streams: int, steps: int) -> torch.Tensor:
    """``(streams, *x_t's channels, steps)``: random codes below 10 for integer inputs, else normal floats."""
    shape = (streams, *x_t.shape[1:], steps)
    return torch.randint(0, 10, shape) if not x_t.is_floating_point() else torch.randn(shape)


def forward_and_steps(
    model: nn.Module, x_t: torch.Tensor, kwargs: dict[str, Any], streams: int, steps: int
) -> tuple[torch.Tensor, np.ndarray]:
    """Random inputs of ``streams`` streams: the model's forward ``(streams, out, steps)`` and the same inputs as
    :meth:`Library.run` takes them, ``(steps, streams, x + cond)`` (the conditioning repeated at every step)."""
    x = random_input(x_t, streams, steps)
    extra = {k: torch.randn(streams, v.shape[1]) for k, v in kwargs.items()}
    columns = [x.reshape(streams, -1, steps).float(), *(v[..., None].expand(-1, -1, steps) for v in extra.values())]
    return offline(model, x, **extra), torch.cat(columns, 1).permute(2, 0, 1).numpy()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_step_is_strict_c99_and_equals_the_forward(name, tmp_path):
    torch.manual_seed(0)
    model, x_t, kwargs = MODELS[name]()
    model.eval()
    exported = export_c(model, tmp_path / "step.c", x_t, **kwargs)
    assert exported.steps_checked >= 512 and exported.max_abs_diff < TOL
    assert (tmp_path / "step.h").read_text().count("dilated_step") == 2  # the step and step_batch
    # strict flags, and an input of our own: 2 streams, batch-major through step_batch
    library = Library(build(tmp_path / "step.c", tmp_path / "strict.so", STRICT), "dilated", exported)
    expected, xin = forward_and_steps(model, x_t, kwargs, 2, 200)
    got = torch.from_numpy(library.run(xin)).permute(1, 2, 0)
    torch.testing.assert_close(got, expected, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("name", ["tcn", "wavenet-gated-global", "mu-law-codes", "wide-convs"])
def test_step_batch_equals_the_forward_and_the_single_step_bit_for_bit(name, tmp_path):
    """``step_batch`` runs each layer for every stream before the next layer; each stream sums in the single
    step's order, so in ISO C (``-std=c99``: no contraction) its outputs equal ``step``'s bit for bit. Under
    ``-O3 -march=native`` (GNU C: ``a * b + c`` may become an FMA) the compiler contracts each function on its own,
    so the two may differ in the last bits (one float32 ulp seen); both equal the forward within the tolerance."""
    torch.manual_seed(2)
    model, x_t, kwargs = MODELS[name]()
    model.eval()
    exported = export_c(model, tmp_path / "step.c", x_t, check=False, **kwargs)
    for flags in (STRICT, ("-O3", "-march=native")):
        library = Library(build(tmp_path / "step.c", tmp_path / f"{len(flags)}.so", flags), "dilated", exported)
        for batch in (1, 3, 64):
            expected, xin = forward_and_steps(model, x_t, kwargs, batch, 100)
            got, single = library.run(xin), library.run(xin, batched=False)
            if flags == STRICT:
                assert np.array_equal(got, single), batch
            np.testing.assert_allclose(got, single, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(torch.from_numpy(got).permute(1, 2, 0), expected, atol=TOL, rtol=TOL)


def test_two_prefixed_models_link_into_one_program(tmp_path):
    torch.manual_seed(1)
    tcn = build_model("tcn", input_channels=2, num_channels=(4, 4), kernel_size=2, dropout=0.0).eval()
    stack = build_model("dilated_stack").eval()
    export_c(tcn, tmp_path / "tcn.c", torch.zeros(1, 2), prefix="tcn", check=False)
    export_c(stack, tmp_path / "stack.c", torch.zeros(1, 1), prefix="stack", check=False)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include <stdlib.h>\n#include "tcn.h"\n#include "stack.h"\n'
        "int main(void) {\n"
        "    const float x[2] = {0.5f, -1.25f};\n    float y[32];\n"
        "    void *a = malloc(tcn_state_size()), *b = malloc(stack_state_size());\n"
        "    tcn_reset(a); stack_reset(b);\n"
        '    for (int t = 0; t < 3; t++) { tcn_step(a, x, NULL, y); printf("%.7g %.7g\\n", y[0], y[3]); }\n'
        '    stack_step(b, x, NULL, y); printf("%.7g\\n", y[0]);\n'
        "    free(a); free(b);\n    return 0;\n}\n"
    )
    binary = tmp_path / "both"
    command = ["cc", *STRICT, "-o", str(binary), "main.c", "tcn.c", "stack.c", "-lm"]
    subprocess.run(command, cwd=tmp_path, check=True)
    lines = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split("\n")
    got = np.array([float(v) for line in lines for v in line.split()])
    x = torch.tensor([0.5, -1.25]).reshape(1, 2, 1).expand(1, 2, 3).contiguous()
    expected_tcn = offline(tcn, x)[0, [0, 3]].T.reshape(-1)  # steps 0..2, channels 0 and 3
    expected_stack = offline(stack, x[:, :1, :1])[0, 0, 0:1]
    np.testing.assert_allclose(got, torch.cat([expected_tcn, expected_stack]).numpy(), rtol=1e-5, atol=1e-6)


def test_every_instruction_has_a_c_emission():
    assert set(EMITTERS) == set(OPS)


def test_export_step_chooses_the_format_by_extension(tmp_path):
    model = nn.Sequential(Conv1d(2, 3, 3, dilation=2), nn.ReLU())
    exported = export_step(model, tmp_path / "step.c", channels=2, prefix="relu_stack")
    assert isinstance(exported, ExportedC) and exported.n_y == 3
    assert "void relu_stack_step(" in (tmp_path / "step.h").read_text()
    assert not (tmp_path / "step.c").read_bytes().startswith(b"\x08")  # C text, not ONNX protobuf bytes
    with pytest.raises(ValueError, match="unknown format '.txt'"):
        export_step(model, tmp_path / "step.txt", channels=2)


def test_cli_exports_a_plain_torch_model_with_input(tmp_path):
    """``--input`` gives a plain torch model its channels (the unknown-extension refusal: ``test_errors.py``)."""
    (tmp_path / "mymodels.py").write_text(
        "from torch import nn\nfrom dilated.layers import Conv1d\n"
        "def build():  # in train mode, with dropout: the export puts it in eval mode\n"
        "    return nn.Sequential(Conv1d(2, 4, 3, dilation=3), nn.Tanh(), nn.Dropout(0.2), Conv1d(4, 1, 2, dilation=9))\n"
    )
    result = dilated_cli(
        "export", "mymodels:build", "--input", "2,50", "-o", "out/step.c", "--prefix", "mine", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "mine_step(state, x[2], cond[0], y[1])" in result.stdout and "equals the model's forward" in result.stdout
    assert (tmp_path / "out" / "step.h").is_file()


@settings(max_examples=int(os.environ.get("FUZZ_C", "5")), deadline=None, suppress_health_check=list(HealthCheck))
@given(drawn=models())
def test_exported_step_equals_the_forward_or_refuses_in_one_line(drawn, tmp_path_factory):
    """Random models (``model_grammar``): the C step is checked equal to the forward at export, or the export
    refuses in one line for a reason other than a C step that differs (that would be a wrong C emission)."""
    model, (_, channels, _), description = drawn
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = export_c(model, tmp_path_factory.mktemp("c") / "step.c", torch.zeros(1, channels, dtype=dtype))
    except (ValueError, TypeError) as error:
        message = str(error)
        assert message and "\n" not in message and "C step differs" not in message, f"{description}: {message!r}"
        return
    assert exported.steps_checked >= 512 and np.isfinite(exported.max_abs_diff), description
