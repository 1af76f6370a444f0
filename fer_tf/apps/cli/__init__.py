"""`fer-tf records|train|cv|eval|soft-labels|smile-head|export|ensemble|bottleneck|predict|landmarks|serve|models`.

The command line. Each subcommand is a module of this package — its flags (`add_parser`) and one
`run(args)` over the library — listed in COMMANDS: a new command is a new module and one entry.
Every flag is checked when parsed and every output path before work starts
(`fer_tf.core.outputs`): a problem the user can fix ends with one line on stderr naming the flag
or file — exit status 2 for a bad flag value, 1 otherwise.
"""
import argparse
import collections
import os
import re
import signal
import sys

from fer_tf.core.errors import FerTfError
from fer_tf.apps.cli.flags import whole

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide C++ start-up noise (CUDA probing)

from fer_tf.apps.cli import (bottleneck, cv, ensemble, eval, export, landmarks, models,  # noqa: E402
                            predict, records, serve, smile_head, soft_labels, train)

COMMANDS = (records, train, cv, eval, soft_labels, smile_head, export, ensemble, bottleneck,
            predict, landmarks, serve, models)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `fer-tf train: error: --epochs: '-3' is not allowed; ...`"""

    def error(self, message):
        message = re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[-1] + ": ",
                         message)
        self.exit(2, f"{self.prog}: error: {message}\n")


# Flag groups several commands share (argparse parent parsers).
Parents = collections.namedtuple("Parents", "hparams vggface2 quiet")


def _parents():
    hparams = Parser(add_help=False)
    hparams.add_argument("--hparams", nargs="*", metavar="NAME=VALUE",
                         help="override hyper-parameters (checked against the model's declarations)")
    hparams.add_argument("--seed", type=whole(0), default=0)
    hparams.add_argument("--init-from", metavar="PATH",
                         help="start from the weights of an export (e.g. models/default) or model "
                              "dir of the same architecture; a classifier for other classes "
                              "starts fresh")
    vggface2 = Parser(add_help=False)
    vggface2.add_argument("--vggface2-weights", metavar="PATH",
                          help="keras-vggface rcmalli_vggface_tf_notop_resnet50.h5 (local file)")
    vggface2.add_argument("--allow-random-init", action="store_true",
                          help="vggface2: random base weights (not the seed's transfer learning)")
    quiet = Parser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bar")
    return Parents(hparams, vggface2, quiet)


def build_parser():
    parents = _parents()
    parser = Parser(prog="fer-tf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub, parents)
    return parser


def _one_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def main(argv=None):
    args = build_parser().parse_args(argv)
    # With a file-size limit (ulimit -f), writing past it raises an OSError instead of killing us.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    prog = f"fer-tf {args.command}"
    from fer_tf.core import logs
    logs.setup(verbose=getattr(args, "verbose", False), command_line=True)
    try:
        status = args.func(args)
    except FerTfError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_status", 1)
    except BrokenPipeError:          # `fer-tf ... | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:             # disk full, file-size limit, permissions while writing
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or _one_line(e)}; free space or choose "
              "another output path", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 — the last resort: one line, never a traceback
        if os.environ.get("FER_TF_DEBUG"):
            raise
        if type(e).__module__.startswith("tensorflow") and hasattr(e, "message"):
            # TensorFlow's own I/O failures (a full disk while checkpointing, say).
            print(f"{prog}: error: {_one_line(e.message)}", file=sys.stderr)
            return 1
        print(f"{prog}: error: {type(e).__name__}: {_one_line(e)} (an unexpected failure: "
              "rerun with FER_TF_DEBUG=1 for the traceback and report it)", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
