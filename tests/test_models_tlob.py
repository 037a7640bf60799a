"""MLPLOB and TLOB (Berti & Kasneci 2025): sizes as the authors' code gives them, shapes, and what they refuse."""

import pytest
import torch

from dilated.models import MLPLOB, TLOB, MLPLOBConfig, TLOBConfig, build_model


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "options", "parameters"),
    [  # the reference's counts (LeonardoBerti00/TLOB, models built with these sizes) less its unused 3-parameter
        # order-type embedding; weights copied across give equal outputs (module notes)
        ("mlplob", {}, 3_012_411),
        ("mlplob", {"hidden_dim": 128, "num_layers": 6}, 9_505_749),
        ("tlob", {}, 1_135_971),
        ("tlob", {"hidden_dim": 128}, 2_300_309),
    ],
)
def test_parameter_counts_equal_the_authors_code(name, options, parameters):
    assert count(build_model(name, **options)) == parameters


@pytest.mark.parametrize("model", [MLPLOB(MLPLOBConfig(window=32, hidden_dim=16)), TLOB(TLOBConfig(window=32))])
def test_windows_give_one_logit_per_class_and_other_lengths_are_refused(model):
    torch.manual_seed(0)
    with torch.no_grad():
        assert model(torch.randn(5, 40, 32)).shape == (5, 3)
    with pytest.raises(ValueError, match=r"expects \(batch, 40, 32\)"):
        model(torch.randn(5, 40, 36))


def test_sizes_not_divisible_by_four_are_refused():
    with pytest.raises(ValueError, match="divisible by 4"):
        MLPLOBConfig(window=50)
    with pytest.raises(ValueError, match="divisible by 4"):
        TLOBConfig(hidden_dim=42)
