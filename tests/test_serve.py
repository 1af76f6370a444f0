"""`fer-tf serve` as a real process on loopback: TF Serving's REST paths and bodies, its gRPC API
through the official `tensorflow-serving-api` client, `/v1/analyze` against `fer-tf predict`,
concurrent clients against sequential answers, every bad request, API keys and the SIGTERM drain."""
import base64
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import TWO_FACES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(REPO, "models")


def served_models(root):
    """TF Serving's layout, NAME/VERSION/, made of links to the shipped exports."""
    for name, version in (("default", "3"), ("landmarks", "1")):
        os.makedirs(os.path.join(root, name))
        os.symlink(os.path.join(SHIPPED, name), os.path.join(root, name, version))
    return str(root)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from fer_tf.apps.serve.process import ServerProcess
    root = served_models(tmp_path_factory.mktemp("served"))
    process = ServerProcess("--models", root, "--precision", "float32", "--max-body-mb", "2",
                            "--max-pixels", "4000000", "--max-rows", "256")
    yield process
    assert process.stop() == 0


def call(server, path, body=None, method=None, headers=None, raw=False):
    """-> (status, parsed JSON body)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(server.url + path, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    return status, (data if raw else json.loads(data))


def faces_batch(n, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 48, 48, 1)).astype(np.uint8)


@pytest.fixture(scope="module")
def local_model():
    """The same export, in this process, to compare the server's answers with."""
    from fer_tf.serving import exported
    return exported.Signatures(os.path.join(SHIPPED, "default"))


# ---- TF Serving's REST API ----------------------------------------------------------------
def test_health_status_and_metadata(server):
    status, body = call(server, "/healthz")
    assert status == 200 and body == {"status": "ready", "models": ["default", "landmarks"]}
    assert call(server, "/v1/models/default") == (200, {"model_version_status": [
        {"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    assert call(server, "/v1/models/default/versions/3")[0] == 200
    status, body = call(server, "/v1/models/default/versions/2")
    assert status == 404 and "Specific(default, 2)" in body["error"]
    status, meta = call(server, "/v1/models/default/metadata")
    assert status == 200 and meta["model_spec"] == {"name": "default", "signature_name": "",
                                                     "version": "3"}
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "faces"}
    faces = signatures["faces"]["inputs"]["faces"]
    assert faces["dtype"] == "DT_UINT8"
    assert [d["size"] for d in faces["tensor_shape"]["dim"]] == ["-1", "48", "48", "1"]
    assert signatures["faces"]["method_name"] == "tensorflow/serving/predict"


def test_predict_row_and_columnar_formats_equal_the_model(server, local_model):
    faces = faces_batch(5)
    expected = local_model("faces", faces=faces)
    status, body = call(server, "/v1/models/default:predict",
                        {"signature_name": "faces", "instances": faces.tolist()})
    assert status == 200, body
    rows = body["predictions"]
    assert len(rows) == 5 and set(rows[0]) == {"probabilities", "classes", "class_names", "smile"}
    np.testing.assert_allclose([r["probabilities"] for r in rows], expected["probabilities"], atol=1e-5)
    np.testing.assert_allclose([r["smile"] for r in rows], expected["smile"], atol=1e-5)
    assert [r["class_names"] for r in rows] == [c.decode() for c in expected["class_names"]]
    # Columnar: {"inputs": {name: batch}} -> {"outputs": {name: batch}}; an instance given as an
    # object of its one input is the same request; a version in the path too.
    status, columnar = call(server, "/v1/models/default/versions/3:predict",
                            {"signature_name": "faces", "inputs": {"faces": faces.tolist()}})
    assert status == 200
    np.testing.assert_allclose(columnar["outputs"]["probabilities"], expected["probabilities"], atol=1e-5)
    status, named = call(server, "/v1/models/default:predict",
                         {"signature_name": "faces", "instances": [{"faces": f} for f in faces.tolist()]})
    np.testing.assert_allclose([r["probabilities"] for r in named["predictions"]],
                               expected["probabilities"], atol=1e-5)


def test_tf_serving_documented_b64_example(server, local_model):
    """TF Serving's REST document: binary inputs as {"b64": ...}, serving_default by default."""
    with open(TWO_FACES, "rb") as f:
        data = f.read()
    expected = local_model("serving_default", image_bytes=np.array([data], object))
    encoded = {"b64": base64.b64encode(data).decode()}
    for body in ({"instances": [encoded]}, {"instances": [{"image_bytes": encoded}]},
                 {"inputs": [encoded]}, {"signature_name": "serving_default", "inputs": {"image_bytes": [encoded]}}):
        status, answer = call(server, "/v1/models/default:predict", body)
        assert status == 200, answer
        first = answer["predictions"][0] if "predictions" in answer else {
            k: v[0] for k, v in answer["outputs"].items()}
        np.testing.assert_allclose(first["probabilities"], expected["probabilities"][0], atol=1e-5)


def test_grpc_prediction_service_with_the_official_client(server, local_model):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                         model_service_pb2_grpc, predict_pb2,
                                         prediction_service_pb2_grpc)
    channel = grpc.insecure_channel(server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    faces = faces_batch(3, seed=1)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "faces"
    request.inputs["faces"].CopyFrom(tf.make_tensor_proto(faces))
    response = stub.Predict(request, 60)
    assert response.model_spec.version.value == 3
    expected = local_model("faces", faces=faces)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]),
                               expected["probabilities"], atol=1e-5)
    request.output_filter.append("smile")
    assert set(stub.Predict(request, 60).outputs) == {"smile"}

    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "default"
    metadata.metadata_field.append("signature_def")
    answer = stub.GetModelMetadata(metadata, 60)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    answer.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "faces"}

    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "landmarks"}), 60)
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE

    for name, signature, code in (("nope", "faces", grpc.StatusCode.NOT_FOUND),
                                  ("default", "nope", grpc.StatusCode.INVALID_ARGUMENT)):
        bad = predict_pb2.PredictRequest()
        bad.CopyFrom(request)
        bad.model_spec.name, bad.model_spec.signature_name = name, signature
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(bad, 60)
        assert caught.value.code() == code
    wrong_shape = predict_pb2.PredictRequest()
    wrong_shape.CopyFrom(request)
    wrong_shape.inputs["faces"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 40, 48, 1), np.uint8)))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(wrong_shape, 60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "[-1,48,48,1]" in caught.value.details()


# ---- /v1/analyze ---------------------------------------------------------------------------
def test_analyze_equals_predict_jsonl_in_every_upload_form(server, tmp_path):
    with open(TWO_FACES, "rb") as f:
        data = f.read()
    out = tmp_path / "rows.jsonl"
    subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", "predict", TWO_FACES, "--format",
                    "jsonl", "--output", str(out), "--precision", "float32", "--with-landmarks"],
                   check=True, capture_output=True, timeout=300)
    expected = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(expected) == 2

    boundary = "fer-tf-test-boundary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                 f"filename=\"two_faces.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + data \
        + f"\r\n--{boundary}--\r\n".encode()
    forms = [(data, {"Content-Type": "image/jpeg"}),
             (multipart, {"Content-Type": f"multipart/form-data; boundary={boundary}"}),
             (json.dumps({"image": {"b64": base64.b64encode(data).decode()}}).encode(),
              {"Content-Type": "application/json"})]
    for body, headers in forms:
        status, answer = call(server, "/v1/analyze?landmarks=dlib", body, headers=headers)
        assert status == 200, answer
        assert answer["model"] == "default" and answer["width"] == 357 and answer["height"] == 192
        assert len(answer["faces"]) == 2
        for got, want in zip(answer["faces"], expected):
            assert got["label"] == want["label"] and got["face"] == want["face"]
            assert got["box"] == want["box"]
            for name, p in want["probabilities"].items():
                assert abs(got["probabilities"][name] - p) < 2e-5
            assert abs(got["smile"] - want["smile"]) < 2e-5
            np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=0.11)
    # Two GENKI-4K faces: the left one smiles, the right one does not.
    assert answer["faces"][0]["smile"] > 0.9 > 0.1 > answer["faces"][1]["smile"]
    status, plain = call(server, "/v1/analyze?smile=false&landmarks=cnn", data,
                         headers={"Content-Type": "image/jpeg"})
    assert status == 200 and "smile" not in plain["faces"][0]
    assert len(plain["faces"][0]["landmarks"]) == 68


def test_concurrent_clients_get_the_sequential_answers(server):
    faces = faces_batch(24, seed=2)

    def one(i):
        status, body = call(server, "/v1/models/default:predict",
                            {"signature_name": "faces", "instances": [faces[i].tolist()]})
        assert status == 200
        return body["predictions"][0]["probabilities"]

    sequential = [one(i) for i in range(len(faces))]
    with ThreadPoolExecutor(12) as pool:
        concurrent = list(pool.map(one, range(len(faces))))
    np.testing.assert_allclose(concurrent, sequential, atol=1e-5)
    with open(TWO_FACES, "rb") as f:
        data = f.read()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: call(server, "/v1/analyze", data,
                                               headers={"Content-Type": "image/jpeg"}), range(6)))
    assert all(status == 200 for status, _ in answers)
    first = answers[0][1]["faces"]
    for _, answer in answers[1:]:
        np.testing.assert_allclose([f["probabilities"]["happy"] for f in answer["faces"]],
                                   [f["probabilities"]["happy"] for f in first], atol=1e-5)


# ---- bad requests: a 4xx JSON error naming the problem, and the server goes on --------------
def png_header(width, height):
    """A PNG whose header declares width x height pixels (a decompression bomb's first bytes)."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xffffffff))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


def bad_requests():
    with open(TWO_FACES, "rb") as f:
        jpeg = f.read()
    bomb = png_header(100_000, 100_000)
    jpeg_type = {"Content-Type": "image/jpeg"}
    as_json = {"Content-Type": "application/json"}
    face = faces_batch(1)[0].tolist()
    return [
        ("malformed JSON", "POST", "/v1/models/default:predict", b'{"instances": [1, 2', as_json, 400, "malformed JSON"),
        ("not UTF-8", "POST", "/v1/models/default:predict", b"\xff\xfe{", as_json, 400, "JSON"),
        ("deep nesting", "POST", "/v1/models/default:predict", b"[" * 100_000 + b"]" * 100_000, as_json, 400, "malformed JSON"),
        ("wrong field name", "POST", "/v1/models/default:predict", {"instance": [face]}, None, 400, "'instance'"),
        ("both fields", "POST", "/v1/models/default:predict", {"instances": [face], "inputs": [face]}, None, 400, "exactly one"),
        ("not an object", "POST", "/v1/models/default:predict", [face], None, 400, "JSON object"),
        ("wrong input name", "POST", "/v1/models/default:predict", {"signature_name": "faces", "instances": [{"face": face}]}, None, 400, "face"),
        ("wrong shape", "POST", "/v1/models/default:predict", {"signature_name": "faces", "instances": [[1, 2, 3]]}, None, 400, "[-1,48,48,1]"),
        ("ragged", "POST", "/v1/models/default:predict", {"signature_name": "faces", "instances": [face, face[:3]]}, None, 400, "rectangular"),
        ("strings for pixels", "POST", "/v1/models/default:predict", {"signature_name": "faces", "instances": [[["a"]]]}, None, 400, "numbers"),
        ("pixel out of range", "POST", "/v1/models/default:predict", {"signature_name": "faces", "instances": [(np.array(face) + 300).tolist()]}, None, 400, "[0, 255]"),
        ("bad base64", "POST", "/v1/models/default:predict", {"instances": [{"b64": "***"}]}, None, 400, "base64"),
        ("non-image bytes", "POST", "/v1/models/default:predict", {"instances": [{"b64": base64.b64encode(b"hello").decode()}]}, None, 400, "refused the input"),
        ("bomb via predict", "POST", "/v1/models/default:predict", {"instances": [{"b64": base64.b64encode(bomb).decode()}]}, None, 413, "10000000000 pixels"),
        ("too many rows", "POST", "/v1/models/default:predict", {"signature_name": "faces", "instances": [[0]] * 300}, None, 413, "at most 256"),
        ("huge flat array", "POST", "/v1/models/default:predict", {"signature_name": "faces", "inputs": [0] * 200_000}, None, 400, "shape"),
        ("body over the limit", "POST", "/v1/models/default:predict", b"[" + b"0," * 1_100_000 + b"0]", as_json, 413, "at most"),
        ("unknown model", "POST", "/v1/models/nope:predict", {"instances": [face]}, None, 404, "nope"),
        ("unknown version", "GET", "/v1/models/default/versions/9", None, None, 404, "Specific(default, 9)"),
        ("unknown signature", "POST", "/v1/models/default:predict", {"signature_name": "nope", "instances": [face]}, None, 400, "nope"),
        ("classify on a predict signature", "POST", "/v1/models/default:classify", {"instances": [face]}, None, 400, "tensorflow/serving/classify"),
        ("unknown path", "GET", "/v1/nothing", None, None, 404, "/v1/nothing"),
        ("wrong method on predict", "GET", "/v1/models/default:predict", None, None, 405, "POST"),
        ("wrong method on analyze", "GET", "/v1/analyze", None, None, 405, "GET"),
        ("wrong method on status", "DELETE", "/v1/models/default", None, None, 405, "GET"),
        ("non-image to analyze", "POST", "/v1/analyze", b"this is not a photo", jpeg_type, 400, "not a readable image"),
        ("truncated image", "POST", "/v1/analyze", jpeg[: len(jpeg) // 3], jpeg_type, 400, "truncated"),
        ("decompression bomb", "POST", "/v1/analyze", bomb, {"Content-Type": "image/png"}, 413, "10000000000 pixels"),
        ("empty body", "POST", "/v1/analyze", b"", jpeg_type, 400, "empty body"),
        ("JSON without b64", "POST", "/v1/analyze", {"photo": "x"}, None, 400, "b64"),
        ("multipart without file", "POST", "/v1/analyze", b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n", {"Content-Type": "multipart/form-data; boundary=b"}, 400, "no file"),
        ("unknown query parameter", "POST", "/v1/analyze?modle=default", jpeg, jpeg_type, 400, "modle"),
        ("unknown detector", "POST", "/v1/analyze?detector=magic", jpeg, jpeg_type, 400, "magic"),
        ("analyze with a landmark model", "POST", "/v1/analyze?model=landmarks", jpeg, jpeg_type, 400, "not an expression model"),
    ]


@pytest.mark.parametrize("case", bad_requests(), ids=lambda case: case[0])
def test_bad_request(server, case):
    name, method, path, body, headers, status, fragment = case
    got, answer = call(server, path, body, method=method, headers=headers)
    assert got == status, answer
    assert set(answer) == {"error"} and fragment in answer["error"], answer
    assert "Traceback" not in answer["error"]
    assert call(server, "/healthz")[0] == 200


def test_memory_stays_bounded_under_bad_requests(server):
    cases = [c for c in bad_requests() if c[0] != "body over the limit"]
    for name, method, path, body, headers, status, fragment in cases[:10]:
        call(server, path, body, method=method, headers=headers)
    before = server.rss_mb()
    for i in range(300):
        name, method, path, body, headers, status, fragment = cases[i % len(cases)]
        assert call(server, path, body, method=method, headers=headers)[0] == status
    after = server.rss_mb()
    assert after - before < 60, (before, after)


# ---- API keys, lifecycle ---------------------------------------------------------------------
def test_api_key_guards_everything_but_health_and_page(tmp_path):
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc
    from fer_tf.apps.serve.process import ServerProcess
    server = ServerProcess("--models", served_models(tmp_path), "--api-key", "s3cret")
    try:
        assert "API key is required" in server.lines[-1]
        assert call(server, "/healthz")[0] == 200
        assert call(server, "/", raw=True)[0] == 200
        status, body = call(server, "/v1/models/default")
        assert status == 401 and "Authorization: Bearer" in body["error"]
        assert call(server, "/v1/models/default", headers={"Authorization": "Bearer nope"})[0] == 403
        assert call(server, "/v1/models/default", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(server, "/v1/models/default", headers={"X-API-Key": "s3cret"})[0] == 200
        stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(server.grpc_target))
        request = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "default"})
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetModelStatus(request, 60)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert stub.GetModelStatus(request, 60, metadata=[("authorization", "Bearer s3cret")])
    finally:
        assert server.stop() == 0


def test_sigterm_drains_requests_in_flight_and_exits_zero(tmp_path):
    """A batch that waits 3 s for company is in flight when SIGTERM arrives: it is answered,
    the process exits 0, and nothing new is accepted meanwhile."""
    from fer_tf.apps.serve.process import ServerProcess
    server = ServerProcess("--models", served_models(tmp_path), "--no-grpc",
                           "--batch-timeout-ms", "3000", "--access-log")
    answers = []
    request = {"signature_name": "faces", "instances": faces_batch(1).tolist()}
    thread = threading.Thread(target=lambda: answers.append(
        call(server, "/v1/models/default:predict", request)))
    thread.start()
    time.sleep(1.0)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):
        call(server, "/healthz")
    assert server.wait_exit(60) == 0
    thread.join(10)
    assert answers and answers[0][0] == 200, answers
    log = "".join(server.lines)
    assert "POST /v1/models/default:predict" in log and "200" in log      # --access-log
    assert "Traceback" not in log


def test_a_port_in_use_is_one_line(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", "serve", "--models",
                                 served_models(tmp_path), "--port", str(port)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--port {port}" in lines[0] and "in use" in lines[0], result.stderr


def test_a_folder_without_models_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", "serve", "--models",
                             str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "no SavedModel found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---- the batcher on its own -----------------------------------------------------------------
def test_batcher_merges_concurrent_requests_and_isolates_a_failing_one():
    from fer_tf.apps.serve.batching import Batcher
    calls = []

    def run(inputs):
        x = inputs["x"]
        calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative")
        return {"y": x * 2}

    batcher = Batcher(run, max_batch_size=8, max_wait=0.2)
    futures = [batcher.submit({"x": np.array([[i]], np.float32)}) for i in range(6)]
    assert [f.result()["y"][0, 0] for f in futures] == [0, 2, 4, 6, 8, 10]
    assert calls == [6]                 # six requests, one call
    calls.clear()
    futures = [batcher.submit({"x": np.array([[v]], np.float32)}) for v in (1, -1, 3)]
    assert futures[0].result()["y"][0, 0] == 2 and futures[2].result()["y"][0, 0] == 6
    with pytest.raises(ValueError):
        futures[1].result()
    assert calls == [3, 1, 1, 1]        # the batch failed: each request again on its own
    calls.clear()
    # Different per-row shapes never share a batch; a request over max_batch_size runs alone.
    a = batcher.submit({"x": np.zeros((1, 2), np.float32)})
    b = batcher.submit({"x": np.zeros((1, 3), np.float32)})
    c = batcher.submit({"x": np.zeros((20, 2), np.float32)})
    assert a.result()["y"].shape == (1, 2) and b.result()["y"].shape == (1, 3)
    assert c.result()["y"].shape == (20, 2)
    assert sorted(calls) == [1, 1, 20]
    batcher.close()


def test_the_docs_tf_serving_config_is_valid_and_fer_tf_serves_that_folder(tmp_path):
    """docs/serving.md's scale-out recipe: its models.config parses as TF Serving's own
    ModelServerConfig, and the NAME/VERSION folder it describes is what `--models` reads."""
    import re
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    from fer_tf.apps.serve.repository import discover
    text = open(os.path.join(REPO, "docs", "serving.md"), encoding="utf-8").read()
    config_text = re.search(r"models.config <<'EOF'\n(.*?)\nEOF", text, re.S).group(1)
    config = text_format.Parse(config_text, model_server_config_pb2.ModelServerConfig())
    names = [c.name for c in config.model_config_list.config]
    assert names == ["default", "smile"]
    for entry in config.model_config_list.config:
        assert entry.base_path == f"/models/{entry.name}" and entry.model_platform == "tensorflow"
        os.makedirs(tmp_path / entry.name)
        os.symlink(os.path.join(SHIPPED, entry.name), tmp_path / entry.name / "1")
    assert {name: version for name, (version, _) in discover(str(tmp_path)).items()} == \
        {"default": 1, "smile": 1}
