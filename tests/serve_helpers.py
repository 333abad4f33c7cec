"""A real ``facenet-tf serve`` process for the tests, and a free port on 127.0.0.1."""

import os
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python pipelines/serve.py`` on 127.0.0.1 and a free port, its output in a log file."""

    def __init__(self, model, gallery, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "pipelines", "serve.py"), "--model", model, "--gallery", gallery,
             "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self._wait_until_up(timeout=180)

    def _wait_until_up(self, timeout):
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}: {self.output()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError("server did not start: " + self.output()[-2000:])

    def output(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
