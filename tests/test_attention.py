"""dilated.models._attention: the narrow-head CPU path equals PyTorch's attention, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dilated.models._attention import _NarrowHeadAttention, attention


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 1, 1, 4), (3, 2, 100, 5)])
def test_values_and_gradients_equal_scaled_dot_product_attention(causal, shape):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=0.3)
    got = attention(q, k, v, 0.3, causal)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)
    upstream = torch.randn(shape, dtype=torch.float64, generator=generator)
    for a, b in zip(torch.autograd.grad(got, (q, k, v), upstream), torch.autograd.grad(expected, (q, k, v), upstream)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_backward_passes_gradcheck():
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(4, 6, 3, dtype=torch.float64, generator=generator, requires_grad=True) for _ in range(3))
    mask = torch.full((6, 6), float("-inf"), dtype=torch.float64).triu_(1)
    assert torch.autograd.gradcheck(lambda a, b, c: _NarrowHeadAttention.apply(a, b, c, 0.5, mask), (q, k, v))


def test_wide_heads_and_dropout_take_pytorchs_kernel():
    q, k, v = (torch.randn(2, 2, 9, 16) for _ in range(3))
    torch.testing.assert_close(
        attention(q, k, v, 0.25, True), F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.25)
    )
    torch.manual_seed(0)
    dropped = attention(*(t[..., :4] for t in (q, k, v)), 0.5, True, dropout=0.5)
    torch.manual_seed(0)
    torch.testing.assert_close(
        dropped,
        F.scaled_dot_product_attention(*(t[..., :4] for t in (q, k, v)), dropout_p=0.5, is_causal=True, scale=0.5),
    )
