import torch

from quadlit.training.normalizer import RunningNorm


def test_running_norm_matches_batch_statistics():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(1000, 5, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2, 3, 4, 5]) + 3.0
    norm = RunningNorm(5)
    for chunk in data.split(137):  # uneven chunks exercise the parallel update
        norm.update(chunk)
    assert torch.allclose(norm.mean, data.mean(0), atol=1e-10)
    assert torch.allclose(norm.var, data.var(0, unbiased=False), atol=1e-10)
    out = norm(data.float())
    assert out.dtype == torch.float32
    assert torch.allclose(out.mean(0), torch.zeros(5), atol=1e-4)
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(5), atol=1e-3)


def test_disabled_norm_is_identity_and_clip_applies():
    x = torch.randn(10, 3)
    assert torch.equal(RunningNorm(3, enabled=False)(x), x)
    norm = RunningNorm(3, clip=1.0)
    norm.update(torch.zeros(4, 3))  # variance 0 -> huge normalised values, clipped
    assert norm(torch.ones(2, 3)).abs().max() <= 1.0


def test_state_dict_round_trip():
    norm = RunningNorm(2)
    norm.update(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    other = RunningNorm(2)
    other.load_state_dict(norm.state_dict())
    x = torch.tensor([[0.5, 1.0]])
    assert torch.equal(norm(x), other(x))
