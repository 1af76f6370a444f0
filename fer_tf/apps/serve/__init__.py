"""`fer-tf serve`: the models over HTTP and gRPC.

- `repository`: the served models, found in TF Serving's layout, each signature behind a batcher;
- `batching`: requests arriving together run as one call (TF Serving's dynamic batching);
- `tfs_json`: TF Serving's REST bodies <-> numpy; `grpc_api`: its gRPC PredictionService;
- `service`: API keys, predict, photo -> faces with a pool of Analyzers;
- `http_app`: the Starlette app (REST paths, /v1/analyze, /healthz, the page in `static/`);
- `server`: ports, uvicorn, the start-up line, the drain on SIGTERM.
"""
