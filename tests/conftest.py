"""Test-wide settings: one intra-op thread (tiny tensors run faster and steadier that way on a
small shared CPU; the DDP test's processes inherit it), non-interactive matplotlib."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
