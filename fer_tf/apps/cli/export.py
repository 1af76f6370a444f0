"""`fer-tf export`: copy a model dir's best SavedModel to a standalone folder."""
import os

from fer_tf.core import outputs
from fer_tf.core.errors import UsageError
from fer_tf.apps.cli.flags import TTA_CHOICES, prior_of, add_prior_flags, path, storage_note


def run(args):
    from fer_tf.serving import export
    outputs.check(args.out, "tflite" if args.tflite else "export", "--out",
                  inputs=[args.model_dir, args.check_data, args.prior_data])
    prior = prior_of(args)
    if args.tflite and prior:
        raise UsageError("--tflite converts an export as it is: export with --prior-tau first, "
                         "then convert that export")
    if args.tflite:
        from fer_tf.serving import tflite
        path = tflite.convert(args.model_dir, args.out)
        print(f"exported {path}: {os.path.getsize(path) / 2**20:.2f} MiB TFLite (+ "
              f"{os.path.splitext(path)[0]}.json)")
        if args.check_data:
            check = tflite.agreement(path, args.model_dir, args.check_data, args.check_split)
            print(f"TFLite vs SavedModel on {check['faces']} {args.check_split} faces: top-1 "
                  f"agreement {check['top1_agreement']:.4f}, largest probability difference "
                  f"{check['max_prob_diff']:.2e}")
        return
    if export.assembler_of(args.model_dir):
        path = export.assemble(args.model_dir, args.out, args.vggface2_weights,
                               args.allow_random_init)
    else:
        path = export.export(args.model_dir, args.out, float16=args.float16,
                             tta=None if args.tta == "none" else args.tta, int8=args.int8,
                             prior=prior)
    print(f"exported {path}: {export.total_size(path) / 2**20:.2f} MiB "
          f"(weights {export.weights_size(path) / 2**20:.2f} MiB{storage_note(args)})")


def add_parser(sub, parents):
    p = sub.add_parser("export", parents=[parents.vggface2],
                       help="copy a model dir's best SavedModel to a standalone folder")
    p.add_argument("--model-dir", type=path, required=True, help="a training model dir or a SavedModel")
    p.add_argument("--out", type=path, required=True)
    storage = p.add_mutually_exclusive_group()
    storage.add_argument("--float16", action="store_true",
                         help="store the weights as float16 (half the size; computation stays float32)")
    storage.add_argument("--int8", action="store_true",
                         help="store kernels as int8 with a scale per output channel (a quarter "
                              "of the size; computation stays float32)")
    p.add_argument("--tta", choices=TTA_CHOICES, default="none",
                   help="build test-time views into the exported graph (same signatures)")
    p.add_argument("--tflite", action="store_true", help="write a .tflite model to --out instead")
    p.add_argument("--check-data", metavar="RECORDS",
                   help="with --tflite: print its agreement with the SavedModel on these records")
    p.add_argument("--check-split", default="test", choices=("train", "eval", "test"))
    add_prior_flags(p)
    p.set_defaults(func=run)

