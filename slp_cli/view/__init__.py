"""`slp view`: a local browser viewer in which every method signs a typed sentence side by side,
and artifacts can be browsed sample by sample (HTTP API: docs/viewer.md).

:class:`Viewer` holds the loaded methods and artifacts and answers the API calls as Python
dicts; :func:`make_server` serves it and the page (``static/``) over HTTP.
"""

from .server import HttpError, Viewer, make_server, serve

__all__ = ["HttpError", "Viewer", "make_server", "serve"]
