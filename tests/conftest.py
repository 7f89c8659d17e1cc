import numpy as np
import pytest

import slp_cli
from slp_cli import Sample


def random_pose(t: int, seed: int = 0, k: int = 178) -> np.ndarray:
    """A smooth random pose sequence with shoulders apart (so it can be normalized)."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(size=(1, k, 3)).astype(np.float32) * 50 + 200
    pose = pose + np.cumsum(rng.normal(size=(t, k, 3)), axis=0).astype(np.float32)
    pose[:, 0] = [300, 200, 0]  # right shoulder
    pose[:, 3] = [200, 200, 0]  # left shoulder
    return pose


def normalized_corpus(path, langs=("dgs",), seed: int = 0, preset: str = "tiny", **kw):
    """A synthetic corpus, normalized as `slp normalize` does, saved at ``path``."""
    from slp_cli.data.synth import synthesize
    from slp_cli.normalize import normalize_samples

    return slp_cli.save(normalize_samples(synthesize(langs=list(langs), preset=preset, seed=seed, **kw)), path,
                        fps=25, normalized=True, normalization="neck-shoulder/frame")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a busy 2-core machine: a second torch thread only adds synchronisation
    (and OpenMP stalls), and one thread is deterministic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def samples():
    return [
        Sample(id=f"s{i}", pose=random_pose(10 + i, i), text=f"text {i}", glosses=["A", "B"],
               lang="dgs", signer="p1", split=("train", "dev", "test")[i % 3],
               gloss_spans=np.array([[0, 5], [5, 10]]))
        for i in range(6)
    ]
