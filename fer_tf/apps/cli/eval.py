"""`fer-tf eval`: accuracy, per-class recall and confusion matrix of an export."""
from fer_tf.core import outputs
from fer_tf.apps.cli.flags import whole, TTA_CHOICES, path


def run(args):
    from fer_tf.apps import evaluate
    from fer_tf.serving import exported
    model_dir = exported.resolve_export(args.model)
    png = args.confusion_png or f"confusion_{exported.read_meta(model_dir).model}_{args.split}.png"
    outputs.check(png, "png", "--confusion-png", inputs=[args.model, args.data])
    tta = "flip" if args.flip_tta else args.tta
    report = evaluate.evaluate(args.model, args.data, args.split, png=png,
                               batch_size=args.batch_size, tta=None if tta == "none" else tta,
                               precision=args.precision)
    print(evaluate.format_report(report))


def add_parser(sub, parents):
    p = sub.add_parser("eval", help="accuracy, per-class recall and confusion matrix of an export")
    p.add_argument("--model", required=True, help="SavedModel dir, or a model dir (best export)")
    p.add_argument("--data", default="records/fer2013", help="record folder")
    p.add_argument("--split", default="test",
                   help="train, eval, test, or any split of the record folder (fold3, fold0+fold1)")
    p.add_argument("--confusion-png", type=path, help="where to write the confusion matrix "
                   "(default: ./confusion_MODEL_SPLIT.png)")
    p.add_argument("--batch-size", type=whole(1, 4096), default=256)
    p.add_argument("--tta", choices=TTA_CHOICES, default="none",
                   help="test-time views averaged in the graph: the mirror image, or ten crops "
                        "(models trained on crops)")
    p.add_argument("--flip-tta", action="store_true", help="the same as --tta flip")
    p.add_argument("--precision", choices=("float32", "bf16"), default="float32",
                   help="bf16: score with the bfloat16 arithmetic `predict` uses on such CPUs")
    p.set_defaults(func=run)

