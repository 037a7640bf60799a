"""Streaming under load: 10,000 concurrent streams stay exact, for both engines."""

import pytest
import torch

import dilated


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["eager", "fast"])
def test_ten_thousand_streams_equal_the_offline_forward(backend):
    torch.manual_seed(0)
    model = dilated.build_model("tcn", input_channels=2, num_channels=[4, 4, 4], kernel_size=3).eval()
    x = torch.randn(10_000, 2, 40)
    with torch.no_grad():
        expected = model(x)
    stream = dilated.stream(model, batch_size=10_000, backend=backend)
    first = torch.stack([stream.step(x[..., t]) for t in range(20)], dim=-1)
    rest = stream.step_many(x[..., 20:])
    assert stream.backend == backend  # the fast case must not pass by silently running the eager engine
    torch.testing.assert_close(torch.cat([first, rest], dim=-1), expected, atol=1e-5, rtol=0)
