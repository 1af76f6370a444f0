"""`fer-tf serve` under load, on loopback: requests/s and latency at 1, 8 and 32 concurrent
clients, for TF Serving's `:predict` and for `/v1/analyze`, with dynamic batching on and off;
`/v1/analyze` against `fer-tf predict` on the same photos; memory across 1,000 bad requests.

    python bench/bench_serve.py --genki ../shared/data/genki4k.tar.gz [--photos 400]
        [--predict-requests 1500] [--json bench_serve.json]

- the server is `fer-tf serve` as users start it (the shipped models; its defaults, so bf16 where
  the CPU has it), one process per setting (`--no-batching` for "off"), started and loaded before
  the clock starts;
- `:predict`: one face (48x48 grey, uint8) per request to the default model's `faces` signature,
  TF Serving's row format, `--predict-requests` requests per level, split over the clients;
- `/v1/analyze`: each of `--photos` GENKI-4K photos sent once as a raw JPEG body (detection,
  alignment, expression and smile);
- clients are threads of this process, one keep-alive HTTP connection each, bodies encoded
  before the clock starts; every answer is checked to be a 200;
- `fer-tf predict DIR --format jsonl --output ...` on the same photos, as a whole process (start-up
  included, as users run it), median of `--predict-runs`; and its in-process rate (Analyzer over
  the folder, models loaded first) for reference;
- memory: the server's RSS before and after `--bad-requests` refused requests of every kind.
"""
import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import extract_genki  # noqa: E402
FERTF = os.path.join(os.path.dirname(sys.executable), "fer-tf")
LEVELS = (1, 8, 32)


def load(url, requests, clients):
    """requests: [(method, path, body, headers)] -> (requests/s, p50 ms, p99 ms); each client
    thread takes the next request and sends it on its own keep-alive connection."""
    parsed = urllib.parse.urlparse(url)
    latencies, failures, lock = [], [], threading.Lock()
    queue = iter(enumerate(requests))

    def client():
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
        connection.connect()
        # As browsers and urllib3 do: without it, headers and body leave in two packets and
        # Nagle's algorithm meets delayed ACKs (40 ms per request).
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            _, (method, path, body, headers) = item
            start = time.perf_counter()
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    failures.append((response.status, data[:200]))
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    ms = np.array(latencies) * 1000
    return len(requests) / wall, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def predict_requests(count, seed=0):
    faces = np.random.RandomState(seed).randint(0, 256, (64, 48, 48, 1)).astype(np.uint8)
    bodies = [json.dumps({"signature_name": "faces", "instances": [f.tolist()]}).encode()
              for f in faces]
    headers = {"Content-Type": "application/json"}
    return [("POST", "/v1/models/default:predict", bodies[i % len(bodies)], headers)
            for i in range(count)]


def analyze_requests(photos):
    out = []
    for path in photos:
        with open(path, "rb") as f:
            out.append(("POST", "/v1/analyze", f.read(), {"Content-Type": "image/jpeg"}))
    return out


def bad_requests():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode()
    face = [[[0]] * 48] * 48
    j = {"Content-Type": "application/json"}
    return [("POST", "/v1/models/default:predict", b'{"instances": [1,', j),
            ("POST", "/v1/models/default:predict", json.dumps({"instance": [face]}).encode(), j),
            ("POST", "/v1/models/default:predict", json.dumps({"signature_name": "faces", "instances": [[1, 2]]}).encode(), j),
            ("POST", "/v1/models/default:predict", json.dumps({"instances": [{"b64": png}]}).encode(), j),
            ("POST", "/v1/models/nope:predict", b"{}", j),
            ("GET", "/v1/models/default:predict", None, {}),
            ("POST", "/v1/analyze", b"not a photo", {"Content-Type": "image/jpeg"}),
            ("POST", "/v1/analyze", b"\xff\xd8\xff\xe0" + b"\x00" * 500, {"Content-Type": "image/jpeg"}),
            ("POST", "/v1/analyze?detector=magic", b"x", {"Content-Type": "image/jpeg"}),
            ("POST", "/v1/models/default:predict", b"[" * 50_000 + b"]" * 50_000, j)]


def send_bad(url, count):
    parsed = urllib.parse.urlparse(url)
    cases = bad_requests()
    statuses = {}
    for i in range(count):
        method, path, body, headers = cases[i % len(cases)]
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        statuses[response.status] = statuses.get(response.status, 0) + 1
    return statuses


def predict_whole_process(folder, runs):
    times = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([FERTF, "predict", folder, "--format", "jsonl", "--output",
                            os.path.join(out, "rows.jsonl")], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def predict_in_process(photos):
    from fer_tf.apps import analyzer, predict
    # As `fer-tf predict` builds it: no landmarks reported, its default workers.
    engine = analyzer.Analyzer(landmarks=None, workers=predict.default_workers("blazeface_auto"))
    engine.analyze_many(photos[:8])              # warm: graphs optimised, pipelines built
    start = time.perf_counter()
    engine.analyze_many(photos)
    return len(photos) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genki", required=True)
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--predict-requests", type=int, default=1500)
    parser.add_argument("--predict-runs", type=int, default=3)
    parser.add_argument("--bad-requests", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    from fer_tf.apps.serve.process import ServerProcess

    work = tempfile.mkdtemp(prefix="bench_serve_")
    folder = os.path.join(work, "photos")
    extract_genki(args.genki, folder, args.photos)
    photos = sorted(os.path.join(folder, name) for name in os.listdir(folder))
    results = {"photos": len(photos), "levels": list(LEVELS), "runs": {}}
    for batching in (True, False):
        server = ServerProcess(*([] if batching else ["--no-batching"]), "--no-grpc")
        try:
            load(server.url, predict_requests(64), 8)              # warm-up
            load(server.url, analyze_requests(photos[:16]), 8)
            setting = "batching" if batching else "no batching"
            for clients in LEVELS:
                for endpoint, requests in ((":predict", predict_requests(args.predict_requests)),
                                           ("/v1/analyze", analyze_requests(photos))):
                    rate, p50, p99 = load(server.url, requests, clients)
                    results["runs"][f"{setting} {endpoint} {clients}"] = {
                        "setting": setting, "endpoint": endpoint, "clients": clients,
                        "requests": len(requests), "per_second": rate, "p50_ms": p50, "p99_ms": p99}
                    print(f"{setting:12s} {endpoint:12s} {clients:3d} clients: {rate:8.1f} req/s  "
                          f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms", flush=True)
            if batching:
                before = server.rss_mb()
                statuses = send_bad(server.url, args.bad_requests)
                after = server.rss_mb()
                results["memory"] = {"bad_requests": args.bad_requests, "statuses": statuses,
                                     "rss_before_mb": before, "rss_after_mb": after}
                print(f"RSS {before:.0f} MB before, {after:.0f} MB after {args.bad_requests} bad "
                      f"requests ({statuses}); healthy: "
                      f"{load(server.url, [('GET', '/healthz', None, {})], 1)[0] > 0}", flush=True)
        finally:
            server.stop()
    whole = predict_whole_process(folder, args.predict_runs)
    inproc = predict_in_process(photos)
    results["fer_tf_predict"] = {"wall_seconds": whole, "photos_per_second": len(photos) / whole,
                                 "in_process_photos_per_second": inproc}
    runs = results["runs"]
    batched32 = runs["batching :predict 32"]["per_second"]
    plain32 = runs["no batching :predict 32"]["per_second"]
    analyze32 = runs["batching /v1/analyze 32"]["per_second"]
    results["ratios"] = {"batching_predict_32": batched32 / plain32,
                         "analyze_32_vs_predict_whole_process": analyze32 / (len(photos) / whole),
                         "analyze_32_vs_predict_in_process": analyze32 / inproc}
    print(f"fer-tf predict on the {len(photos)} photos: {whole:.2f} s whole process "
          f"({len(photos) / whole:.1f} photos/s); in process {inproc:.1f} photos/s")
    print("ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in results["ratios"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
