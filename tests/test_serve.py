"""`lenet-fast serve`: the page and the API over real HTTP, the bad requests (400, 411, 413, 404, 405)
the server survives, nothing on disk reachable, several clients at once, the command itself, and the
model shipped in the package. The page in a real browser: test_serve_browser.py."""
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.apps.demo import DEFAULT_MODEL, MAX_BODY, make_server
from lenet_fast.apps.demo.server import static_files
from lenet_fast.data import load_sample
from lenet_fast.data.images import mnist_style


@pytest.fixture(scope="module")
def net():
    return LeNet5.load(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def server(net):
    server = make_server(net, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def digits():
    data = load_sample()
    order = np.random.default_rng(5).permutation(len(data.y_train))[:20]
    return data.x_train[order], data.y_train[order]


def request(server, method, path, body=None, headers=None):
    """(status, headers, parsed JSON or text) of one request."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, response, json.loads(data) if kind.startswith("application/json") else data.decode()


def raw(server, data):
    """Send raw bytes, return what comes back (b"" if the server just closes)."""
    with socket.create_connection(server.server_address[:2], timeout=30) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: connection.recv(65536), b""))


def test_the_page_and_its_files(server):
    status, response, page = request(server, "GET", "/")
    assert status == 200 and response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert re.search(r'<canvas id="pad"', page) and 'id="prediction"' in page and 'id="clear"' in page
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    for path, kind in (("/demo.js", "text/javascript"), ("/demo.css", "text/css")):
        status, response, _ = request(server, "GET", path)
        assert status == 200 and response.getheader("Content-Type").startswith(kind)
    for body, _ in static_files().values():         # no external asset: no URL leaves the server
        assert not re.search(rb"(src|href|url)\s*[=(]\s*[\"']?(https?:)?//", body)
        assert b"http://" not in body and b"https://" not in body


def test_predict_an_image(server, net, digits):
    x, y = digits
    for picture, label in zip(x[:5], y[:5]):
        status, _, answer = request(server, "POST", "/api/predict", {"image": picture.tolist()})
        assert status == 200
        assert answer["digit"] == net.predict(picture[None])[0] == label
        np.testing.assert_allclose(answer["penalties"], net.forward(picture[None])[0], rtol=1e-4, atol=1e-3)
        assert answer["decision"] == "argmin"
        np.testing.assert_array_equal(answer["picture"], picture)
        assert {k: np.shape(v) for k, v in answer["maps"].items()} == {
            "c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5)}
        own = net._forward(net.prepare_input(picture[None]))
        np.testing.assert_allclose(answer["maps"]["c3"], own["c3"][0], atol=1e-4)


def test_predict_a_canvas(server, net, digits):
    x, y = digits
    canvas = np.kron(x[3], np.ones((10, 10), np.int64))      # 280x280, as the page's pad
    status, _, answer = request(server, "POST", "/api/predict", {"canvas": canvas.tolist()})
    assert status == 200 and answer["digit"] == y[3]
    np.testing.assert_array_equal(answer["picture"], mnist_style(canvas))
    dark_on_light = 255 - canvas[10:270, 40:240]             # either polarity, any size within limits
    status, _, answer = request(server, "POST", "/api/predict", {"canvas": dark_on_light.tolist()})
    assert status == 200 and np.array(answer["picture"]).shape == (28, 28)


def test_modern_model_answers_scores(digits):
    server = make_server(LeNet5("modern", seed=0), port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, answer = request(server, "POST", "/api/predict", {"image": digits[0][0].tolist()})
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and len(answer["scores"]) == 10 and "penalties" not in answer
    assert answer["decision"] == "argmax" and answer["digit"] == int(np.argmax(answer["scores"]))


GOOD = [[0] * 28 for _ in range(28)]


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"[1, 2]", "one of \"image\""),
    (b"{}", "one of \"image\""),
    (json.dumps({"image": GOOD, "canvas": GOOD}).encode(), "one of \"image\""),
    (json.dumps({"image": GOOD[:27]}).encode(), "must be 28x28, got 27x28"),
    (json.dumps({"image": [row[:27] for row in GOOD]}).encode(), "must be 28x28, got 28x27"),
    (json.dumps({"image": GOOD[:27] + [[0] * 29]}).encode(), "same length"),
    (json.dumps({"image": [[]]}).encode(), "must be 28x28"),
    (json.dumps({"image": "0" * 784}).encode(), "list of rows"),
    (json.dumps({"image": [[256] * 28] * 28}).encode(), "integers 0..255"),
    (json.dumps({"image": [[-1] * 28] * 28}).encode(), "integers 0..255"),
    (json.dumps({"image": [[0.5] * 28] * 28}).encode(), "integers 0..255"),
    (json.dumps({"image": [[True] * 28] * 28}).encode(), "integers 0..255"),
    (json.dumps({"image": [[None] * 28] * 28}).encode(), "integers 0..255"),
    (b'{"image": [[NaN]]}', "must be 28x28"),
    (json.dumps({"canvas": [[0] * 20] * 20}).encode(), "28..400 on each side"),
    (json.dumps({"canvas": [[0] * 401] * 30}).encode(), "28..400 on each side"),
    (json.dumps({"canvas": [[0] * 100] * 100}).encode(), "no digit found"),
])
def test_bad_requests_are_400_with_a_message(server, body, message):
    status, _, answer = request(server, "POST", "/api/predict", body, {"Content-Type": "application/json"})
    assert status == 400 and message in answer["error"]


def test_too_large_bodies_are_413(server):
    body = b'{"canvas": [' + b"0," * (MAX_BODY // 2) + b"0]}"
    status, _, answer = request(server, "POST", "/api/predict", body)
    assert status == 413 and "limit is 1,000,000" in answer["error"]
    reply = raw(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{}")
    assert reply.startswith(b"HTTP/1.0 413")


@pytest.mark.parametrize("head, status", [
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\n\r\n", b"411"),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", b"411"),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"400"),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{}", b"400"),
    (b"GET / HTTP/x.y\r\n\r\n", b"400"),
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
])
def test_malformed_http_is_refused(server, head, status):
    assert raw(server, head).split(b"\r\n", 1)[0].split(b" ")[1] == status


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/nope", 404), ("GET", "/api", 404), ("GET", "/static/index.html", 404),
    ("GET", "/lenet5_sample.npz", 404), ("GET", "/../../../etc/passwd", 404), ("GET", "/%2e%2e/api.py", 404),
    ("GET", "//etc/passwd", 404), ("GET", "/demo.js/../server.py", 404), ("GET", "/api/predict", 405),
    ("POST", "/", 405), ("POST", "/elsewhere", 404), ("PUT", "/api/predict", 501), ("DELETE", "/", 501),
])
def test_nothing_else_is_reachable(server, method, path, status):
    got, _, answer = request(server, method, path, b"{}" if method == "POST" else None)
    assert got == status
    if status in (404, 405):
        assert answer["error"]


def test_the_server_survives_it_all_and_answers_many_at_once(server, net, digits):
    test_bad_requests_are_400_with_a_message(server, b"{", "not valid JSON")
    raw(server, b"\x00\x01\x02 garbage")
    with socket.create_connection(server.server_address[:2]):
        pass                                          # a client that connects and leaves
    x, y = digits
    answers = [None] * len(y)

    def ask(i):
        answers[i] = request(server, "POST", "/api/predict", {"image": x[i].tolist()})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(y))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a[0] for a in answers] == [200] * len(y)
    assert [a[2]["digit"] for a in answers] == list(net.predict(x))


def test_binds_to_localhost_by_default(net):
    server = make_server(net, port=0, quiet=True)
    try:
        assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    finally:
        server.server_close()


def test_the_command(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "lenet_fast", "serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not ignored
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url, line
        busy = subprocess.run([sys.executable, "-m", "lenet_fast", "serve", "--port", url.group(1)],
                              capture_output=True, text=True, timeout=120)
        assert busy.returncode == 1 and busy.stderr.count("\n") == 1 and "cannot listen on" in busy.stderr
        connection = http.client.HTTPConnection("127.0.0.1", int(url.group(1)), timeout=30)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
    finally:
        process.send_signal(signal.SIGINT)            # Ctrl-C
        status = process.wait(timeout=60)
    assert status == 0
    missing = subprocess.run([sys.executable, "-m", "lenet_fast", "serve", str(tmp_path / "none.npz")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "none.npz" in missing.stderr and missing.stderr.count("\n") == 1


def test_the_shipped_model(net):
    """Trained by tools/train_demo_model.py on the embedded sample: the paper variant, float32, and it
    reads the sample it learned from."""
    assert net.variant == "paper" and net.dtype == np.float32 and net.criterion == "mse"
    data = load_sample()
    assert net.score(data.x_train, data.y_train) > 0.98
