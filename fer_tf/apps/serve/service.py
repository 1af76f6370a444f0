"""What the server does, apart from HTTP and gRPC: load the models (in the background, so the
health check can say "loading"), check API keys, run a signature through its batcher, and analyse
a photo with a pool of Analyzers whose classification calls share those batchers."""
import dataclasses
import hmac
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

from fer_tf import faces
from fer_tf.apps import analyzer as analyzing
from fer_tf.apps import predict
from fer_tf.apps.serve import tfs_json
from fer_tf.apps.serve.errors import ApiError
from fer_tf.apps.serve.repository import BatchingOptions, Repository, discover
from fer_tf.core.errors import FerTfError
from fer_tf.serving import rebuild

LANDMARKS = ("none", "dlib", "cnn")


@dataclasses.dataclass
class Options:
    models: str
    api_key: str = None
    precision: str = "auto"
    batching: bool = True
    max_batch_size: int = 64
    batch_timeout_ms: float = 2.0
    workers: int = 16                # threads of /v1/analyze (an Analyzer each per setting)
    max_body_bytes: int = 20 * 2**20
    max_pixels: int = 50_000_000
    max_rows: int = 1024             # examples in one :predict request
    request_timeout: float = 60.0


class ServerState:
    def __init__(self, options):
        self.options = options
        self.models_found = discover(options.models)     # fails fast, before any port is bound
        self.repository = None
        self.error = None
        self.loaded = threading.Event()
        # /v1/analyze runs on these threads only (each keeps its own face pipelines).
        self.analyze_pool = ThreadPoolExecutor(options.workers, thread_name_prefix="fer_tf_analyze")
        self._local = threading.local()
        self._models_lock = threading.Lock()
        self._models = {}                 # servable name -> ExportedModel / LandmarkModel

    # ---- loading ------------------------------------------------------------------------
    def load(self):
        """Load every model (call from a background thread); sets `loaded` either way."""
        try:
            batching = (BatchingOptions(self.options.max_batch_size,
                                        self.options.batch_timeout_ms / 1000.0)
                        if self.options.batching else None)
            self.repository = Repository(self.options.models, self.options.precision, batching)
        except FerTfError as e:
            self.error = str(e)
        finally:
            self.loaded.set()

    @property
    def ready(self):
        return self.loaded.is_set() and self.repository is not None

    def require_ready(self):
        if not self.loaded.is_set():
            raise ApiError(503, "the models are still loading; retry when GET /healthz says ready")
        if self.repository is None:
            raise ApiError(503, f"the models failed to load: {self.error}")

    def close(self):
        self.analyze_pool.shutdown(wait=False, cancel_futures=True)
        if self.repository is not None:
            self.repository.close()

    # ---- API keys -----------------------------------------------------------------------
    def check_key(self, headers):
        """headers: a case-insensitive mapping (Starlette) or gRPC metadata as a dict."""
        if not self.options.api_key:
            return
        given = headers.get("x-api-key")
        auth = headers.get("authorization") or ""
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None:
            raise ApiError(401, "missing API key: send the header 'Authorization: Bearer KEY' "
                                "or 'X-API-Key: KEY'")
        if not hmac.compare_digest(given.encode(), self.options.api_key.encode()):
            raise ApiError(403, "wrong API key")

    # ---- TF Serving's predict -----------------------------------------------------------
    def predict(self, servable, signature_name, arrays):
        """Run one signature on checked inputs (blocking; batched with concurrent requests)."""
        tfs_json.check_image_sizes(arrays, self.options.max_pixels)
        try:
            return servable.signatures(signature_name, **arrays)
        except tf.errors.InvalidArgumentError as e:
            raise ApiError(400, f"the model refused the input: {_first_line(e.message)}") from None
        except tf.errors.OpError as e:
            raise ApiError(400, f"the model failed on the input ({type(e).__name__}): "
                                f"{_first_line(e.message)}") from None

    # ---- photo -> faces -----------------------------------------------------------------
    def analyze(self, data, source, model=None, detector=None, landmarks="none", smile=True):
        """Encoded photo bytes -> the JSON of `fer-tf predict --format jsonl` for its faces."""
        detector = detector or faces.DEFAULT_DETECTOR
        if detector not in faces.DETECTORS:
            raise ApiError(400, f"detector={detector!r}: use one of {', '.join(faces.DETECTORS)}")
        if landmarks not in LANDMARKS:
            raise ApiError(400, f"landmarks={landmarks!r}: use one of {', '.join(LANDMARKS)}")
        servable = self._classifier(model)
        try:
            rgb = faces.load_image(data, max_pixels=self.options.max_pixels)
        except faces.BadImage as e:
            status = 413 if "over the limit" in str(e) else 400
            raise ApiError(status, f"{source}: {e}") from None
        engine = self._analyzer(servable, detector, landmarks, smile)
        started = time.perf_counter()
        result = engine.analyze(rgb)
        if result.error:
            raise ApiError(400, f"{source}: {result.error}")
        result.source = source
        rows = predict.rows(result, engine.reported_heads)
        return {"model": servable.name, "version": servable.version, "source": source,
                "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                "classes": list(engine.classes),
                "seconds": round(time.perf_counter() - started, 4),
                "faces": [row.to_json() for row in rows if row.is_face],
                "note": next((row.note for row in rows if not row.is_face), None)}

    def _classifier(self, name):
        self.require_ready()
        if name is None:
            name = "default" if "default" in self.repository.servables else next(
                (s.name for s in self.repository.servables.values() if s.kind is rebuild.CLASSIFIER), None)
            if name is None:
                raise ApiError(404, "no expression model is served; start the server with "
                                    "--models pointing at fer-tf exports")
        servable = self.repository.get(name)
        if servable.kind is not rebuild.CLASSIFIER:
            raise ApiError(400, f"model={name!r} is not an expression model exported by fer-tf")
        return servable

    def _loaded(self, servable):
        """The servable as an ExportedModel / LandmarkModel over its batched signatures, once."""
        with self._models_lock:
            if servable.name not in self._models:
                self._models[servable.name] = servable.model()
            return self._models[servable.name]

    def _analyzer(self, servable, detector, landmarks, smile):
        """This worker thread's Analyzer for these settings: an Analyzer keeps its face pipeline
        (BlazeFace interpreters, dlib predictors) per thread, so each of the `workers` threads
        of the analyze pool builds its own once and reuses it."""
        key = (servable.name, detector, landmarks, bool(smile))
        engines = getattr(self._local, "engines", None)
        if engines is None:
            engines = self._local.engines = {}
        if key not in engines:
            model = self._loaded(servable)
            smile_model = smile and not model.has_smile and self.repository.servables.get("smile")
            points = None
            if landmarks == "cnn":
                served = self.repository.servables.get("landmarks")
                if served is None or served.kind is not rebuild.LANDMARKS:
                    raise ApiError(400, "landmarks=cnn needs a landmark model served as 'landmarks'")
                points = self._loaded(served)
            engines[key] = analyzing.Analyzer(
                model, smile=(self._loaded(smile_model) if smile_model
                              else bool(smile) and model.has_smile),
                landmarks=None if landmarks == "none" else landmarks, landmarks_model=points,
                detector=detector, workers=1)
        return engines[key]


def _first_line(text):
    """TensorFlow's reason, without its 'Graph execution error:' preamble and node names."""
    lines = [line.strip() for line in str(text).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("[[", "Graph execution error",
                                                                     "Detected at node"))]
    return lines[0][:300] if lines else "unknown error"
