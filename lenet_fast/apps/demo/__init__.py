"""The live demo of ``lenet-fast serve``: a web page where anyone draws a digit and watches LeNet-5 read it.

``server.py`` is the HTTP server (the standard library's ThreadingHTTPServer), ``api.py`` the one API
call, ``static/`` the page (HTML, vanilla JavaScript and CSS: no external asset) and
``lenet5_sample.npz`` the model used when none is given, trained on the embedded MNIST sample by
``python tools/train_demo_model.py``.
"""
import os

from .api import MAX_BODY, BadRequest
from .server import DemoServer, make_server

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lenet5_sample.npz")

__all__ = ["DEFAULT_MODEL", "MAX_BODY", "BadRequest", "DemoServer", "make_server"]
