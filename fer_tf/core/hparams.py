"""Typed hyper-parameters: each declares its type and allowed values once, so every `--hparams`
override is checked in one place before any work starts, and no value is silently replaced.

A model's own defaults (`ModelSpec.hparams`) are plain values: a name the shared declarations
know keeps their range with the model's default; any other name is typed by its default
(whole numbers and lists of them must be >= 1, other numbers >= 0).
"""
import dataclasses
import math

from fer_tf.core.errors import UsageError


@dataclasses.dataclass(frozen=True)
class HParam:
    default: object
    low: float = None             # inclusive unless low_open
    high: float = None            # inclusive unless high_open
    low_open: bool = False
    high_open: bool = False
    choices: tuple = None

    def allowed(self):
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        kind = _kind(self.default)
        if kind == "bool":
            return "true or false"
        if kind == "list":
            return "a list of whole numbers >= 1, e.g. [32,64]"
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        what = "a whole number" if kind == "int" else "a number"
        return f"{what} {' and '.join(p for p in (lo, hi) if p)}".strip()

    def check(self, name, value):
        """-> the value (ints accepted for floats); raises UsageError naming the flag."""
        kind = _kind(self.default)
        ok = False
        if self.choices:
            ok = value in self.choices
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "list":
            ok = (isinstance(value, (list, tuple)) and len(value) > 0
                  and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
            value = list(value) if ok else value
        elif kind in ("int", "float"):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if kind == "int":
                number = number and float(value).is_integer()
            ok = number and math.isfinite(value) and self._in_range(value)
            if ok:
                value = int(value) if kind == "int" else float(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise UsageError(f"--hparams {name}={value!r}: not allowed; {name} must be "
                             f"{self.allowed()}")
        return value

    def _in_range(self, value):
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def _kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    return "str"


def infer(default):
    """The declaration of a model-specific hyper-parameter from its default value."""
    kind = _kind(default)
    if kind == "int":
        return HParam(default, low=1)
    if kind == "float":
        return HParam(default, low=0)
    return HParam(default)


def specs(common, model_defaults):
    """name -> HParam for a model: the shared declarations with the model's defaults."""
    out = dict(common)
    for name, value in model_defaults.items():
        if isinstance(value, HParam):
            out[name] = value
        elif name in common:
            out[name] = dataclasses.replace(common[name], default=value)
        else:
            out[name] = infer(value)
    return out


def resolve(declared, overrides):
    """Defaults overridden by checked values; unknown names are refused."""
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise UsageError(f"--hparams: unknown name(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(declared))}")
    params = {name: p.default for name, p in declared.items()}
    for name, value in (overrides or {}).items():
        params[name] = declared[name].check(name, value)
    return params
