"""`fer-tf serve`: the models over HTTP (TF Serving's REST API, /v1/analyze, a browser page) and
gRPC (TF Serving's PredictionService)."""
import os

from fer_tf.apps.cli.flags import non_negative, path, positive_number, whole


def shipped_models_dir():
    from fer_tf.serving import exported
    return os.path.dirname(exported.shipped_model("default"))


def run(args):
    from fer_tf.apps.serve import server
    from fer_tf.apps.serve.service import Options
    api_key = args.api_key or os.environ.get("FER_TF_API_KEY") or None
    options = Options(models=args.models or shipped_models_dir(), api_key=api_key,
                      precision=args.precision, batching=not args.no_batching,
                      max_batch_size=args.max_batch_size, batch_timeout_ms=args.batch_timeout_ms,
                      workers=args.workers, max_body_bytes=int(args.max_body_mb * 2**20),
                      max_pixels=args.max_pixels, max_rows=args.max_rows,
                      request_timeout=args.request_timeout)
    return server.serve(options, args.host, args.port, None if args.no_grpc else args.grpc_port,
                        args.access_log, args.drain_seconds)


def add_parser(sub, parents):
    p = sub.add_parser("serve", help="serve the models over HTTP and gRPC (TF Serving's API, "
                                     "/v1/analyze, a browser page)")
    p.add_argument("--models", type=path, metavar="DIR",
                   help="folder of models: NAME/VERSION/saved_model.pb (TF Serving's layout) or "
                        "NAME/saved_model.pb; one SavedModel or model dir also works (default: "
                        "the shipped models)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=whole(0, 65535), default=8501,
                   help="REST port (TF Serving's default 8501; 0: any free port)")
    p.add_argument("--grpc-port", type=whole(0, 65535), default=8500,
                   help="gRPC port (TF Serving's default 8500; 0: any free port)")
    p.add_argument("--no-grpc", action="store_true", help="serve REST only")
    p.add_argument("--api-key", metavar="KEY",
                   help="require this key (header 'Authorization: Bearer KEY' or 'X-API-Key') on "
                        "every endpoint but /healthz and the page; also $FER_TF_API_KEY")
    p.add_argument("--precision", choices=("auto", "float32", "bf16"), default="auto",
                   help="as for predict: bfloat16 arithmetic where the CPU has it")
    p.add_argument("--no-batching", action="store_true",
                   help="run every request on its own instead of batching concurrent ones")
    p.add_argument("--max-batch-size", type=whole(1, 4096), default=64,
                   help="largest batch of rows (faces) run at once (TF Serving's max_batch_size)")
    p.add_argument("--batch-timeout-ms", type=non_negative, default=2.0,
                   help="how long a batch waits for more requests (batch_timeout_micros / 1000)")
    p.add_argument("--workers", type=whole(1, 64), default=16,
                   help="photos /v1/analyze works on at once (threads; their faces share batches)")
    p.add_argument("--max-body-mb", type=positive_number, default=20.0,
                   help="largest request body, in MiB (413 above)")
    p.add_argument("--max-pixels", type=whole(1), default=50_000_000,
                   help="largest image, in pixels, read from its header before decoding (413 above)")
    p.add_argument("--max-rows", type=whole(1), default=1024,
                   help="most examples in one :predict request")
    p.add_argument("--request-timeout", type=positive_number, default=60.0,
                   help="seconds a request may take, body included (408 / 503 after)")
    p.add_argument("--drain-seconds", type=positive_number, default=30.0,
                   help="on SIGTERM / Ctrl-C, how long requests in flight may take to finish")
    p.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    p.set_defaults(func=run)
