"""`fer-tf bottleneck`: cache VGGFace2 base features of 224 records (feature extraction)."""
import argparse

from fer_tf.core import outputs
from fer_tf.apps.cli.flags import whole, fraction, path


def run(args):
    from fer_tf.training import bottleneck
    outputs.check(args.out, "records", "--out", inputs=[args.data])
    manifest = bottleneck.cache_features(args.data, args.out, args.vggface2_weights,
                                         args.allow_random_init, args.width, args.batch_size,
                                         progress=not args.quiet)
    counts = ", ".join(f"{name} {split.count}" for name, split in manifest.splits.items())
    print(f"wrote {args.out}: {manifest.feature_dim}-d features, {counts}")


def add_parser(sub, parents):
    p = sub.add_parser("bottleneck", parents=[parents.vggface2, parents.quiet],
                       help="cache VGGFace2 base features of 224 records (feature extraction)")
    p.add_argument("--data", required=True, help="224x224 record folder")
    p.add_argument("--out", type=path, required=True, help="feature cache folder (train it with --model vggface2_head)")
    p.add_argument("--batch-size", type=whole(1, 4096), default=32)
    p.add_argument("--width", type=fraction, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(func=run)

