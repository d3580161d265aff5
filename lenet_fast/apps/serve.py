"""What ``lenet-fast serve`` does: start the live demo (``lenet_fast.apps.demo``) and print its address.

Without MODEL it serves the model shipped in the package (trained on the embedded MNIST sample), so it
works offline at once. It binds to 127.0.0.1 unless --host says otherwise; Ctrl-C stops it.
"""
import argparse
import sys

from ..model import LeNet5
from .commands import UserError
from .demo import DEFAULT_MODEL, make_server


def run_serve(args):
    """Serve until Ctrl-C; exit status 0 then, 1 when the address cannot be bound."""
    net = LeNet5.load(args.model or DEFAULT_MODEL, n_threads=args.threads)
    try:
        server = make_server(net, args.host, args.port, quiet=args.quiet)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    which = args.model or "the model trained on the embedded MNIST sample"
    print(f"LeNet-5 reads your digits at {server.url}  ({which}, {net.variant} variant; Ctrl-C to stop)",
          flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: --host {args.host} makes the page reachable from other machines", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def _port(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return port


def add_parser(commands):
    """The ``serve`` subcommand's parser (cli.py calls it)."""
    serve = commands.add_parser(
        "serve", help="the live demo: a web page where you draw a digit and watch LeNet-5 read it",
        description="Start a local web server with a page where you draw a digit (mouse, pen or finger) and "
                    "see the digit LeNet-5 reads, its ten penalties, the 28x28 picture it saw and the feature "
                    "maps of C1, S2, C3 and S4. API: POST /api/predict with {\"image\": 28 rows of 28 "
                    "integers 0..255} (README, \"The live demo\").")
    serve.add_argument("model", metavar="MODEL", nargs="?",
                       help="a model file (default: the one shipped, trained on the embedded sample)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="the port (default 8000; 0: any free port)")
    serve.add_argument("--threads", type=int, default=1,
                       help="OpenMP threads per request (default 1: one picture gains nothing from more, and "
                            "each request's thread would start its own team)")
    serve.add_argument("--quiet", action="store_true", help="do not log the requests")
    serve.set_defaults(run=run_serve)
    return serve
