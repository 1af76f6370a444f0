"""Flag value types (each names what is allowed) and helpers several commands share."""
import argparse
import ast

from fer_tf.core.errors import UsageError


def whole(low, high=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            allowed = f"between {low} and {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed; give a whole number {allowed}")
        return value
    parse.__name__ = "whole number"
    return parse


TTA_CHOICES = ("none", "flip", "ten_crop")


# fer_tf.faces.DETECTORS, default first, spelt out so parsing flags does not import OpenCV.
DETECTORS = ("blazeface_auto", "blazeface", "dlib")


def number(accepts, wanted):
    """A float flag's parser: `accepts(value)` says whether a value is allowed (NaN never is),
    `wanted` words the rule in the one-line error."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not accepts(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed; give {wanted}")
        return value
    parse.__name__ = "number"
    return parse


positive_number = number(lambda v: 0 < v < float("inf"), "a number > 0")


fraction = number(lambda v: 0 < v <= 1, "a number in (0, 1]")


non_negative = number(lambda v: 0 <= v < float("inf"), "a number >= 0")


def prior_of(args):
    """(tau, record folder) from --prior-tau/--prior-data, or None; one without the other is
    refused rather than guessed."""
    if (args.prior_tau is None) != (args.prior_data is None):
        raise UsageError("--prior-tau and --prior-data go together: the strength and the record "
                         "folder whose training split gives the class frequencies")
    return None if args.prior_tau is None else (args.prior_tau, args.prior_data)


def add_prior_flags(p):
    p.add_argument("--prior-tau", type=non_negative, metavar="TAU",
                   help="divide the probabilities by the training class frequencies to this "
                        "power (post-hoc logit adjustment; 0 removes it; choose it on PublicTest "
                        "with tools/prior_correction.py)")
    p.add_argument("--prior-data", metavar="RECORDS",
                   help="with --prior-tau: the record folder the model was trained on")


def path(text):
    """A file or folder flag: an empty string is refused, not taken for "no flag"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; give a file or folder name")
    return text


def parse_hparams(pairs):
    """['keep_prob=0.6', 'filters=[32,64,128]'] -> dict with Python literals where they parse;
    values are checked against the model's declarations later (fer_tf/core/hparams.py)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--hparams {pair!r}: expected name=value, e.g. keep_prob=0.6")
        if key in out:
            raise UsageError(f"--hparams {key}: given twice; give each name once")
        if value.lower() in ("true", "false"):     # shell habit; a bare string would be truthy
            out[key] = value.lower() == "true"
            continue
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def class_list(text):
    names = [n.strip() for n in text.split(",")]
    if len(names) < 2 or not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; give two or more distinct "
                                         "class names separated by commas")
    return names


DATASETS = ("fer2013", "genki", "landmarks", "folder", "csv")


def model_to_train(args, default):
    """--model; else the architecture of --init-from (fine-tuning needs the same one); else
    `default`."""
    if args.model:
        return args.model
    if args.init_from:
        from fer_tf.training import warm_start
        return warm_start.source(args.init_from)[1].model
    return default


def storage_note(args):
    return ", float16" if args.float16 else ", int8 kernels" if args.int8 else ""
