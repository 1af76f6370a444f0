"""Read dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, shipped in the
`face_recognition_models` package) into numpy arrays, checking every layer against the network
`fer_tf.models.dlib_resnet` builds. Nothing is downloaded: the file comes from the installed package.

The file is dlib's own serialisation (dlib/serialize.h, dlib/cuda/tensor.h, dlib/dnn/layers.h):
- an integer is a control byte (low nibble: how many bytes follow; 0x80: negative) and then its
  bytes, little-endian; a string is an integer length and its bytes; a bool is one ASCII '0'/'1';
- a floating-point parameter (learning-rate multipliers, the input means) is two integers,
  mantissa and binary exponent;
- a tensor is version 2, num_samples, k, nr, nc and then raw little-endian float32;
  an alias tensor (a view into a layer's one parameter tensor) is version 1, num_samples, k, nr, nc.
The network is written outermost layer first, so the file opens with the loss layer and one version
integer per nested layer (tags and skips write nothing else), then the input layer, then each
computational layer's own record in forward order, each followed by its wrapper's trailer.
"""
import dataclasses
import os

import numpy as np

from fer_tf.core.errors import FerTfError

FILE_NAME = "dlib_face_recognition_resnet_model_v1.dat"
INPUT_RECORD = b"\x01\x15input_rgb_image_sized"     # the input layer's name, length first


def default_path():
    """The file inside the installed `face_recognition_models` package."""
    try:
        import face_recognition_models
    except ImportError:
        raise FerTfError("the dlib face-recognition ResNet needs the face_recognition_models "
                         "package: pip install face_recognition_models") from None
    return face_recognition_models.face_recognition_model_location()


class _Reader:
    def __init__(self, data, path):
        self.data, self.path, self.pos = data, path, 0

    def fail(self, what):
        return FerTfError(f"{self.path}: not dlib's face-recognition ResNet: {what} "
                          f"(at byte {self.pos}); reinstall face_recognition_models")

    def byte(self):
        if self.pos >= len(self.data):
            raise self.fail("file ends early")
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self):
        control = self.byte()
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte {control:#x}")
        raw = self.data[self.pos:self.pos + size]
        if len(raw) < size:
            raise self.fail("file ends early")
        self.pos += size
        value = int.from_bytes(raw, "little")
        return -value if control & 0x80 else value

    def string(self):
        length = self.int()
        if not 0 <= length <= 64:
            raise self.fail(f"bad string length {length}")
        raw = self.data[self.pos:self.pos + length]
        self.pos += length
        return raw.decode("latin-1")

    def real(self):
        mantissa = self.int()
        exponent = self.int()
        return float(np.ldexp(float(mantissa), exponent)) if mantissa else 0.0

    def bool(self):
        value = self.byte()
        if value not in (ord("0"), ord("1")):
            raise self.fail(f"bad bool byte {value:#x}")
        return value == ord("1")

    def tensor(self):
        version = self.int()
        if version != 2:
            raise self.fail(f"tensor version {version}, expected 2")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise self.fail("tensor runs past the end of the file")
        values = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos = end
        return values

    def alias(self):
        version = self.int()
        if version != 1:
            raise self.fail(f"alias tensor version {version}, expected 1")
        return tuple(self.int() for _ in range(4))


@dataclasses.dataclass
class Layer:
    kind: str                 # con, affine, relu, add_prev, avg_pool, max_pool, fc
    arrays: dict              # name -> numpy array, TensorFlow layout
    geometry: tuple = ()      # con: (filters, kh, kw, stride, padding); pools: (kh, kw, stride, pad)


def _con(r):
    params = r.tensor().reshape(-1)
    filters, nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(7))
    kernel_shape, bias_shape = r.alias(), r.alias()
    for _ in range(4):                   # learning-rate and weight-decay multipliers
        r.real()
    if stride_y != stride_x or pad_y != pad_x or kernel_shape[2:] != (nr, nc):
        raise r.fail(f"unexpected convolution geometry {nr}x{nc}/{stride_y}x{stride_x}")
    count = int(np.prod(kernel_shape))
    if params.size != count + filters or bias_shape != (1, filters, 1, 1):
        raise r.fail("convolution parameters of the wrong size")
    # dlib keeps filters as (out, in, rows, cols); TensorFlow wants (rows, cols, in, out).
    kernel = params[:count].reshape(kernel_shape).transpose(2, 3, 1, 0)
    return Layer("con", {"kernel": kernel, "bias": params[count:].copy()},
                 (filters, nr, nc, stride_y, pad_y))


def _affine(r):
    params = r.tensor().reshape(-1)
    gamma, beta = r.alias(), r.alias()
    r.int()                              # mode: per channel (FC_MODE would be per element)
    channels = gamma[1]
    if params.size != 2 * channels or beta != gamma:
        raise r.fail("affine parameters of the wrong size")
    # Batch norm already folded into y = gamma * x + beta: no mean and variance to recover.
    return Layer("affine", {"gamma": params[:channels].copy(), "beta": params[channels:].copy()})


def _pool(kind):
    def read(r):
        nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
        return Layer(kind, {}, (nr, nc, stride_y, pad_y))
    return read


def _fc(r):
    outputs, inputs = r.int(), r.int()
    params = r.tensor()
    r.alias(), r.alias()
    r.int()                              # bias mode
    for _ in range(4):
        r.real()
    if params.size != outputs * inputs:  # fc_no_bias: weights only, (inputs, outputs)
        raise r.fail("fc parameters of the wrong size")
    return Layer("fc", {"kernel": params.reshape(inputs, outputs).copy()}, (outputs,))


READERS = {"con_4": _con, "affine_": _affine, "relu_": lambda r: Layer("relu", {}),
           "add_prev_": lambda r: Layer("add_prev", {}), "avg_pool_2": _pool("avg_pool"),
           "max_pool_2": _pool("max_pool"), "fc_2": _fc}


def _trailer(r, first):
    """What dlib's add_layer writes after its layer: three state flags and three (empty) tensors
    (gradients and cached output); the one that wraps the input layer also writes its sample
    expansion factor."""
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()
    if first:
        r.int()


@dataclasses.dataclass
class Network:
    means: tuple              # RGB channel means the input layer subtracts
    size: int                 # the chip size the file was trained on (150)
    layers: list


def read(path=None):
    """-> Network with every layer in forward order; refuses a file that is not the ResNet."""
    path = path or default_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FerTfError(f"{path}: cannot read the dlib ResNet ({e.strerror})") from None
    r = _Reader(data, path)
    if r.int() != 1 or r.string() != "loss_metric_2":     # add_loss_layer's version, its loss
        raise r.fail("the file does not start with dlib's loss_metric_2")
    r.real(), r.real()                   # the metric loss's margin and distance threshold
    # One version integer per nested wrapper (add_layer 2, tags and skips 1, the innermost 3).
    versions = 0
    while data[r.pos:r.pos + len(INPUT_RECORD)] != INPUT_RECORD:
        if r.int() not in (1, 2, 3):
            raise r.fail("bad layer version before the input layer")
        versions += 1
    if r.string() != "input_rgb_image_sized":
        raise r.fail("no input_rgb_image_sized layer")
    means = tuple(r.real() for _ in range(3))
    rows, cols = r.int(), r.int()
    layers = []
    while r.pos < len(data):
        name = r.string()
        if name not in READERS:
            raise r.fail(f"unknown layer {name!r}")
        layers.append(READERS[name](r))
        _trailer(r, first=not layers[:-1])
    return Network(means, rows if rows == cols else None, layers)


def check_plan(network, expected):
    """The file's layers against `expected` [(kind, geometry, {array: shape})]: returns the layers,
    or refuses with one line naming the first difference."""
    layers = network.layers
    for i, (kind, geometry, shapes) in enumerate(expected):
        if i >= len(layers):
            raise FerTfError(f"dlib ResNet file: {len(layers)} layers, the network needs "
                             f"{len(expected)} (layer {i + 1}, {kind}, is missing)")
        got = layers[i]
        found = {k: tuple(v.shape) for k, v in got.arrays.items()}
        if got.kind != kind or tuple(got.geometry) != tuple(geometry) or found != shapes:
            raise FerTfError(f"dlib ResNet file: layer {i + 1} is {got.kind} {tuple(got.geometry)} "
                             f"{found}, the network needs {kind} {tuple(geometry)} {shapes}")
    if len(layers) != len(expected):
        raise FerTfError(f"dlib ResNet file: {len(layers)} layers, the network needs {len(expected)}")
    return layers


def write_checkpoint(weights, out_dir, skip=()):
    """{layer: [kernel, bias]} -> a TF checkpoint with variables LAYER/kernel and LAYER/bias, the
    names Keras layers get in an Estimator's graph; returns its prefix."""
    import tensorflow as tf
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        variables = []
        for layer, arrays in weights.items():
            if layer in skip:
                continue
            for suffix, value in zip(("kernel", "bias"), arrays):
                variables.append(v1.Variable(value, name=f"{layer}/{suffix}"))
        saver = v1.train.Saver(variables, write_version=v1.train.SaverDef.V2)
        with v1.Session() as session:
            session.run(v1.variables_initializer(variables))
            os.makedirs(out_dir, exist_ok=True)
            return saver.save(session, os.path.join(out_dir, "dlib_resnet"), write_meta_graph=False)
