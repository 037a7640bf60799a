import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dilated.models._mulaw import (
    CodeEmbedding,
    mu_law_compress,
    mu_law_decode,
    mu_law_encode,
    mu_law_expand,
    one_hot,
)


@pytest.mark.parametrize("mu", [255, 15, 1])
def test_every_code_round_trips_exactly(mu):
    q = torch.arange(mu + 1)
    x = mu_law_decode(q, mu)
    assert torch.equal(mu_law_encode(x, mu), q)
    assert torch.equal(mu_law_encode(mu_law_decode(q, mu, torch.float64), mu), q)
    assert torch.all(x[1:] > x[:-1])  # strictly increasing
    assert x[0] == -1.0 and x[-1] == 1.0


def test_codes_are_int64_in_range_and_symmetric():
    x = torch.linspace(-1.5, 1.5, 1001)
    q = mu_law_encode(x)
    assert q.dtype == torch.int64 and int(q.min()) == 0 and int(q.max()) == 255
    assert mu_law_encode(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]
    codes = torch.arange(256)
    assert torch.allclose(mu_law_decode(codes), -mu_law_decode(255 - codes))  # centres mirror around 0


def test_compress_expand_are_inverse():
    x = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    assert torch.allclose(mu_law_expand(mu_law_compress(x)), x, atol=1e-12)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, width=32), st.sampled_from([255, 127, 15]))
def test_quantisation_error_is_within_half_a_bin(value, mu):
    x = torch.tensor([value], dtype=torch.float32)
    q = mu_law_encode(x, mu)
    centre = 2.0 * q.double() / mu - 1.0
    # nearest code in the companded domain: within half a bin (1 / mu)
    assert (mu_law_compress(x, mu) - centre).abs().item() <= 1.0 / mu + 1e-12
    # mapped back: within the image of that half bin under F^-1 (steepest on the side away from 0)
    far = centre.abs() + 1.0 / mu
    bound = (math.expm1(far.item() * math.log1p(mu)) - math.expm1(centre.abs().item() * math.log1p(mu))) / mu
    assert (mu_law_decode(q, mu, torch.float64) - x.double()).abs().item() <= bound + 1e-12


def test_decode_rejects_bad_codes():
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        mu_law_decode(torch.tensor([256]))
    with pytest.raises(ValueError, match="integer"):
        mu_law_decode(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="mu"):
        mu_law_encode(torch.zeros(1), mu=0)


def test_one_hot_and_embedding_are_channels_first():
    q = torch.tensor([[0, 3, 255], [1, 1, 2]])
    x = one_hot(q)
    assert x.shape == (2, 256, 3) and x.dtype == torch.float32
    assert torch.equal(x.argmax(dim=1), q) and torch.equal(x.sum(dim=1), torch.ones(2, 3))
    embed = CodeEmbedding(channels=8)
    e = embed(q)
    assert e.shape == (2, 8, 3)
    assert torch.equal(e[:, :, 1], embed.embedding.weight[q[:, 1]])
