"""The TCN paper's adding problem and copy memory tasks, checked against locuslab/TCN's construction."""

from __future__ import annotations

import pytest
import torch

from dilated.data._synthetic import AddingProblem, CopyMemory


def test_adding_problem_structure() -> None:
    data = AddingProblem(size=64, seed=3)
    assert len(data) == 64 and data.seq_len == 600
    same_half = 0
    for i in range(len(data)):
        x, y = data[i]
        assert x.shape == (2, 600) and x.dtype == torch.float32 and y.shape == (1,) and y.dtype == torch.float32
        assert bool(((x[0] >= 0) & (x[0] < 1)).all())
        marked = torch.nonzero(x[1]).flatten()
        assert len(marked) == 2 and x[1].sum() == 2  # two distinct positions, zeros elsewhere
        assert y.item() == (x[0, marked[0]] + x[0, marked[1]]).item()
        same_half += int((marked < 300).all() or (marked >= 300).all())
    assert same_half > 0  # as locuslab/TCN: both markers may fall in the same half


def test_adding_problem_halves_variant() -> None:
    for x, _ in AddingProblem(size=32, seq_len=50, seed=1, halves=True):
        first, second = torch.nonzero(x[1]).flatten().tolist()
        assert first < 25 <= second


def test_copy_memory_matches_locuslab_construction() -> None:
    data = CopyMemory(size=8, seed=5)
    for x, y in data:
        assert x.shape == (1, 1020) and x.dtype == torch.float32 and y.shape == (1020,) and y.dtype == torch.int64
        seq = x[0, :10]
        assert bool(((seq >= 1) & (seq <= 8)).all())
        # locuslab/TCN: x = cat(seq, zeros[:-1], 9 * ones(mem + 1)), y = cat(zeros(mem), zeros(T), seq)
        expected_x = torch.cat([seq, torch.zeros(1000)[:-1], 9 * torch.ones(11)])
        expected_y = torch.cat([torch.zeros(10), torch.zeros(1000), seq]).long()
        torch.testing.assert_close(x[0], expected_x)
        torch.testing.assert_close(y, expected_y)


def test_copy_memory_digits_cover_1_to_8() -> None:
    digits = torch.cat([x[0, :4] for x, _ in CopyMemory(size=100, blank_len=5, mem_len=4)])
    assert sorted(digits.unique().long().tolist()) == list(range(1, 9))


@pytest.mark.parametrize("make", [lambda seed: AddingProblem(16, 40, seed), lambda seed: CopyMemory(16, 30, 10, seed)])
def test_deterministic_given_seed(make) -> None:
    first, again, other = make(0), make(0), make(1)
    for i in (15, 0, 7):  # any order
        torch.testing.assert_close(first[i], again[i])
    assert not torch.equal(first[3][0], other[3][0])
    torch.testing.assert_close(first[-1], first[15])
    with pytest.raises(IndexError):
        first[16]
    x, y = next(iter(torch.utils.data.DataLoader(first, batch_size=4)))
    assert x.shape[0] == 4 and y.shape[0] == 4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="size must be >= 1"):
        AddingProblem(0)
    with pytest.raises(ValueError, match="seq_len must be >= 2"):
        AddingProblem(4, seq_len=1)
    with pytest.raises(ValueError, match="blank_len and mem_len must be >= 1"):
        CopyMemory(4, blank_len=0)
