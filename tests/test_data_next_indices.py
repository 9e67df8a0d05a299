"""data.Batches.next_indices (added for chapter 04's stacked models): the indices of exactly the
batch that next() would have returned, and the same stream afterwards."""

import torch

from bn_utils import data


def test_next_indices_walks_the_same_sequence_as_next():
    x, y = torch.arange(40.0).view(20, 2), torch.arange(20)
    by_batch = data.batches(x, y, 6, seed=3)
    by_index = data.batches(x, y, 6, seed=3)
    for _ in range(10):   # across several epochs (3 batches each)
        xb, yb = next(by_batch)
        idx = by_index.next_indices()
        assert torch.equal(x[idx], xb) and torch.equal(y[idx], yb)
