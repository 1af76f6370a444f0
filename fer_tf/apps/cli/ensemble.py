"""`fer-tf ensemble`: one SavedModel that averages several exports' probabilities."""
from fer_tf.core import outputs
from fer_tf.apps.cli.flags import TTA_CHOICES, positive_number, prior_of, add_prior_flags, path, storage_note


def run(args):
    from fer_tf.serving import export
    outputs.check(args.out, "export", "--out", inputs=[*args.members, args.prior_data])
    path = export.ensemble(args.members, args.out, weights=args.weights, float16=args.float16,
                           tta=None if args.tta == "none" else args.tta, int8=args.int8,
                           prior=prior_of(args))
    print(f"exported {path}: ensemble of {len(args.members)}, {export.total_size(path) / 2**20:.2f} "
          f"MiB (weights {export.weights_size(path) / 2**20:.2f} MiB{storage_note(args)})")


def add_parser(sub, parents):
    p = sub.add_parser("ensemble", help="one SavedModel that averages several exports' probabilities")
    p.add_argument("members", nargs="+", help="exports or model dirs with the same label set")
    p.add_argument("--out", type=path, required=True)
    p.add_argument("--weights", type=positive_number, nargs="+",
                   help="one weight per member (default: equal); choose them on PublicTest only")
    storage = p.add_mutually_exclusive_group()
    storage.add_argument("--float16", action="store_true", help="store the weights as float16")
    storage.add_argument("--int8", action="store_true",
                         help="store kernels as int8 with a scale per output channel")
    p.add_argument("--tta", choices=TTA_CHOICES, default="none",
                   help="test-time views for every member")
    add_prior_flags(p)
    p.set_defaults(func=run)

