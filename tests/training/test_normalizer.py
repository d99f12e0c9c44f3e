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


def _rank_worker(rank: int, init_file: str, results) -> None:
    import torch.distributed as dist

    from quadlit.training import distributed

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        g = torch.Generator().manual_seed(100 + rank)
        norm = RunningNorm(3)
        for _ in range(3):  # ranks hold different amounts of data
            norm.update(torch.randn(50 + 30 * rank, 3, generator=g) * (rank + 1) + rank, across_ranks=True)
        grads = torch.nn.Linear(3, 2)
        for p in grads.parameters():
            p.grad = torch.full_like(p, float(rank + 1))
        distributed.average_gradients(grads.parameters())
        results[rank] = (norm.mean.clone(), norm.var.clone(), norm.count.clone(),
                         [p.grad.clone() for p in grads.parameters()],
                         distributed.any_rank(rank == 1), distributed.min_over_ranks(10 - rank))
    finally:
        dist.destroy_process_group()


def test_statistics_and_gradients_agree_across_ranks(tmp_path):
    """Under DDP each rank folds the union of all ranks' batches into its normaliser (equal to a
    single process seeing all the data), and gradients become the ranks' mean."""
    import torch.multiprocessing as mp

    results = mp.Manager().dict()
    mp.spawn(_rank_worker, args=(str(tmp_path / "init"), results), nprocs=2, join=True)
    whole = RunningNorm(3)
    for step in range(3):
        batches = []
        for rank in range(2):
            g = torch.Generator().manual_seed(100 + rank)
            for _ in range(step + 1):
                x = torch.randn(50 + 30 * rank, 3, generator=g) * (rank + 1) + rank
            batches.append(x)
        whole.update(torch.cat(batches))
    for rank in range(2):
        mean, var, count, grads, any_flag, smallest = results[rank]
        assert count == whole.count == 3 * (50 + 80)
        assert torch.allclose(mean, whole.mean, atol=1e-12) and torch.allclose(var, whole.var, atol=1e-12)
        assert all(torch.equal(g, torch.full_like(g, 1.5)) for g in grads)
        assert any_flag is True and smallest == 9
    assert torch.equal(results[0][0], results[1][0])  # bitwise the same on both ranks


def test_denormalize_inverts_the_normalisation():
    norm = RunningNorm(3)
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([0.1, 2.0, 5.0]) + 3.0
    torch.testing.assert_close(norm.denormalize(norm(x)), x.double())  # nothing folded in yet: identity
    norm.update(x)
    torch.testing.assert_close(norm.denormalize(norm(x)), x.double(), atol=1e-5, rtol=0)
    assert (norm(x).std(0, unbiased=False) - 1).abs().max() < 1e-3  # and the normalised values are not the raw ones
