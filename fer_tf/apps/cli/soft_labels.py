"""`fer-tf soft-labels`: a teacher export's probabilities for a record split (distillation)."""
from fer_tf.core import outputs
from fer_tf.apps.cli.flags import path


def run(args):
    from tqdm import tqdm
    from fer_tf.apps import distill
    outputs.check(args.out, "soft_labels", "--out", inputs=[args.model, args.data])
    meta = distill.label_split(
        args.model, args.data, args.split, args.out,
        progress_bar=lambda total: tqdm(total=total, desc="teacher", unit=" faces",
                                        disable=args.quiet))
    print(f"wrote {args.out}: {meta['count']} {args.split} faces of {args.data}; the teacher's "
          f"accuracy on them {meta['teacher_accuracy']:.4f}")


def add_parser(sub, parents):
    p = sub.add_parser("soft-labels", parents=[parents.quiet],
                       help="a teacher export's probabilities for a record split (distillation)")
    p.add_argument("model", help="teacher: SavedModel dir (an ensemble, say) or a model dir")
    p.add_argument("--data", default="records/fer2013", help="record folder")
    p.add_argument("--split", default="train", help="record split (default: train)")
    p.add_argument("--out", type=path, required=True, help="soft-label file to write (.npz)")
    p.set_defaults(func=run)

