"""TF Serving's gRPC API (`tensorflow.serving.PredictionService`: Predict, GetModelMetadata;
`ModelService`: GetModelStatus) over the same servables and batchers as the REST API, so a
client written for TF Serving — the official `tensorflow-serving-api` stubs — works unchanged."""
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from fer_tf.apps.serve import tfs_json
from fer_tf.apps.serve.errors import ApiError


def _version(model_spec):
    return model_spec.version.value if model_spec.HasField("version") else None


class _Handlers:
    def __init__(self, server):
        self.server = server           # the ServerState: repository, options, key check

    def _guard(self, context, method):
        try:
            self.server.check_key(dict(context.invocation_metadata()))
            return method()
        except ApiError as e:
            context.abort(e.grpc_code, e.message)


class PredictionService(_Handlers, prediction_service_pb2_grpc.PredictionServiceServicer):

    def Predict(self, request, context):  # noqa: N802 — the gRPC method name
        return self._guard(context, lambda: self._predict(request))

    def _predict(self, request):
        servable = self.server.repository.get(request.model_spec.name, _version(request.model_spec))
        name, signature = servable.signature(request.model_spec.signature_name)
        arrays = {}
        for key, proto in request.inputs.items():
            if key not in signature.inputs:
                raise ApiError(400, f"input {key!r} is not in signature {name!r} (it takes "
                                    f"{', '.join(signature.inputs)})")
            try:
                arrays[key] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                raise ApiError(400, f"input {key!r}: cannot read the TensorProto ({e})") from None
            if arrays[key].dtype != tfs_json.NUMPY_TYPES.get(signature.inputs[key].dtype, None) \
                    and arrays[key].dtype != object:
                raise ApiError(400, f"input {key!r}: dtype {arrays[key].dtype} where the "
                                    f"signature expects "
                                    f"{tf.dtypes.as_dtype(signature.inputs[key].dtype).name}")
            tfs_json.check_shape(arrays[key], signature.inputs[key], f"input {key!r}")
        missing = set(signature.inputs) - set(arrays)
        if missing:
            raise ApiError(400, f"missing input(s) {', '.join(sorted(missing))} of signature {name!r}")
        outputs = self.server.predict(servable, name, arrays)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = name
        wanted = set(request.output_filter) or set(outputs)
        unknown = wanted - set(outputs)
        if unknown:
            raise ApiError(400, f"output_filter names {', '.join(sorted(unknown))}, not outputs of "
                                f"signature {name!r}")
        for key in sorted(wanted):
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        return self._guard(context, lambda: self._metadata(request))

    def _metadata(self, request):
        servable = self.server.repository.get(request.model_spec.name, _version(request.model_spec))
        fields = set(request.metadata_field)
        if fields != {"signature_def"}:
            raise ApiError(400, "metadata_field must be [\"signature_def\"] (the only metadata "
                                "TF Serving has)")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(tfs_json.signature_def_map(servable))
        return response


class ModelService(_Handlers, model_service_pb2_grpc.ModelServiceServicer):

    def GetModelStatus(self, request, context):  # noqa: N802
        return self._guard(context, lambda: self._status(request))

    def _status(self, request):
        servable = self.server.repository.get(request.model_spec.name, _version(request.model_spec))
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = servable.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


def start(server, host, port, max_message_bytes, threads=16):
    """-> (grpc.Server, the bound port); port 0 takes a free one."""
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(threads, thread_name_prefix="fer_tf_grpc"),
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", max_message_bytes),
                 ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(server),
                                                                       grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(server), grpc_server)
    try:
        bound = grpc_server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise OSError(f"--grpc-port {port}: cannot listen on {host}:{port} (in use?)")
    grpc_server.start()
    return grpc_server, bound
