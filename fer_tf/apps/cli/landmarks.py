"""`fer-tf landmarks`: draw 68 facial landmarks on photos, or evaluate landmark models."""
from fer_tf.core import outputs
from fer_tf.core.errors import UsageError
from fer_tf.apps.cli.flags import path


def _landmark_models(paths):
    """--model values, or the shipped compact landmark model."""
    if paths:
        return paths
    from fer_tf.serving import exported
    return [exported.shipped_model("landmarks")]


def run(args):
    from fer_tf.apps import landmark_eval
    if args.evaluate:
        outputs.check(args.ced_png, "png", "--ced-png", inputs=[args.evaluate, *(args.model or [])])
        report = landmark_eval.evaluate(_landmark_models(args.model), args.evaluate,
                                        png=args.ced_png, names=args.model or ["models/landmarks"])
        print(landmark_eval.format_report(report))
        return 0
    if not args.images:
        raise UsageError("images: give one or more photos to draw landmarks on (or --evaluate "
                         "landmarks68_300w.tar.gz)")
    outputs.check(args.annotate, "annotations", "--annotate", inputs=args.images,
                  walked_inputs=args.images)
    if args.model and len(args.model) > 1:
        raise UsageError("--model: give one landmark model to draw with (several are for "
                         "--evaluate)")
    model = None if args.dlib else _landmark_models(args.model)[0]
    results = landmark_eval.annotate(model, args.images, args.annotate, args.dlib)
    failed = 0
    for image, found in results:
        if isinstance(found, str):
            failed += 1
            print(f"{image}: ERROR {found}")
        else:
            print(f"{image}: {len(found)} face(s) -> {args.annotate}")
    return 1 if failed else 0


def add_parser(sub, parents):
    p = sub.add_parser("landmarks", help="68 facial landmarks: draw them on images, or evaluate "
                       "the CNN against dlib on the 300-W test faces")
    p.add_argument("images", nargs="*")
    p.add_argument("--model", nargs="+", metavar="PATH",
                   help="landmark SavedModel(s) or model dir(s) (default: the shipped compact "
                        "model; --evaluate compares several on one CED plot)")
    p.add_argument("--annotate", type=path, default="landmarks_out", metavar="DIR")
    p.add_argument("--dlib", action="store_true", help="draw dlib's predictor instead of the CNN")
    p.add_argument("--evaluate", metavar="ARCHIVE",
                   help="landmarks68_300w.tar.gz: NME / failure rates / latency vs dlib on helen_testset")
    p.add_argument("--ced-png", type=path, default="ced.png")
    p.set_defaults(func=run)

