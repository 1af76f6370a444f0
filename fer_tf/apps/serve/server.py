"""Running the server: bind the ports (a port in use is one line, before anything loads), start
uvicorn and the gRPC server, load the models in the background (the health check answers
"loading" meanwhile), print one start-up line, and on SIGTERM or Ctrl-C stop accepting, finish the
requests in flight and exit 0."""
import asyncio
import contextlib
import logging
import gc
import socket
import sys
import threading

import uvicorn

from fer_tf.apps.serve import grpc_api, http_app
from fer_tf.apps.serve.service import ServerState
from fer_tf.core.errors import FerTfError


class _Uvicorn(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM/SIGINT once it has shut down, so the process would die
    of the signal; a drained server exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self):
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def bind(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelt out: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it a keep-alive response's headers and body meet Nagle and delayed ACKs (40 ms each).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise FerTfError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); choose "
                         "another port or host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_host(host):
    return f"[{host}]" if ":" in host else host


def serve(options, host="127.0.0.1", port=8501, grpc_port=8500, access_log=False,
          drain_seconds=30.0, announce=None):
    """Serve until a signal; returns the exit status (0 after a drain, 1 if loading failed)."""
    announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
    state = ServerState(options)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    grpc_server = grpc_bound = None
    if grpc_port is not None:
        try:
            grpc_server, grpc_bound = grpc_api.start(state, host, grpc_port, options.max_body_bytes)
        except OSError as e:
            sock.close()
            raise FerTfError(f"{e}; choose another port, or --no-grpc") from None
    server = None

    def loaded():
        state.load()
        # TensorFlow and the models leave ~300,000 objects for the garbage collector to walk on
        # every full collection, and parsing a request's JSON allocates enough to trigger them:
        # frozen, json.loads of a 48x48 face takes 0.24 ms instead of 1.2 ms.
        gc.freeze()
        if state.error:
            announce(f"fer-tf serve: error: {state.error}")
            server.should_exit = True
            return
        names = ", ".join(f"{s.name} (v{s.version})" for s in state.repository.servables.values())
        where = f"http://{url_host(host)}:{port}/"
        grpc = f" and gRPC {url_host(host)}:{grpc_bound}" if grpc_server else ""
        key = "; an API key is required" if options.api_key else ""
        announce(f"fer-tf serve: {len(state.repository.servables)} model(s): {names} — REST "
                 f"{where}{grpc}{key}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        threading.Thread(target=loaded, name="fer_tf_load", daemon=True).start()
        yield
        if grpc_server is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: grpc_server.stop(drain_seconds).wait())
        state.close()

    app = http_app.create_app(state, lifespan)
    config = uvicorn.Config(app, log_level="warning", access_log=access_log,
                            timeout_graceful_shutdown=drain_seconds, lifespan="on",
                            server_header=False)
    if access_log:          # one line per request on stdout; uvicorn's own chatter stays off
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    server = _Uvicorn(config)
    server.run(sockets=[sock])
    return 1 if state.error else 0
