import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_backend():
    from runtime.load import load_embedded

    return load_embedded("tiny", threads=1)
