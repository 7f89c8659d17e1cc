"""slp: sign language production toolkit (text -> 3D signing poses), stages over HDF5 artifacts.

Python API::

    import slp_cli
    corpus = slp_cli.load("corpus.h5")          # Artifact: .samples, .fps, .layout, ...
    for s in corpus: s.id, s.pose, s.text, s.glosses, s.lang, s.split
    slp_cli.save(samples, "out.h5", fps=25)     # atomic write
"""

__version__ = "0.1.0"

from .artifacts import Artifact, ArtifactWriter, Sample, load, save  # noqa: E402
from .errors import SlpError  # noqa: E402

__all__ = ["Artifact", "ArtifactWriter", "Sample", "SlpError", "load", "save", "__version__"]
