import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_engine():
    from runtime.load import load_engine

    return load_engine("tiny", threads=1)
