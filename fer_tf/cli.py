"""`fer-tf records|train|eval|export|predict|models`: the command line.

Every FerTfError becomes one line on stderr and exit status 1; argument errors exit with 2.
"""
import argparse
import ast
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide C++ start-up noise (CUDA probing)


def _hparams(pairs):
    """['keep_prob=0.6', 'filters=[32,64,128]'] -> dict with Python literals where they parse."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"fer-tf: error: --hparams {pair!r}: expected name=value")
        if value.lower() in ("true", "false"):     # shell habit; a bare string would be truthy
            out[key] = value.lower() == "true"
            continue
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def cmd_records(args):
    from fer_tf import convert
    args.out = args.out or f"records/{args.dataset}"
    if args.dataset == "landmarks":
        from fer_tf import logs
        logs.setup()
        manifest = convert.convert_landmarks(args.csv, args.out, size=args.size or 128,
                                             seed=args.seed, progress=not args.quiet)
        counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
        print(f"wrote {args.out}: {counts} (68 points, {manifest['image']['height']}px crops)")
        return
    if args.dataset == "genki":
        from fer_tf import logs
        logs.setup()
        manifest = convert.convert_genki(args.csv, args.out, size=args.size or 64,
                                         channels=args.channels, folds=args.folds, seed=args.seed,
                                         centre_crop_fallback=args.centre_crop_fallback,
                                         progress=not args.quiet)
        counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
        print(f"wrote {args.out}: {counts} (smile2, {manifest['image']['height']}px)")
        return
    args.size = args.size or 48
    manifest = convert.convert_fer2013(
        args.csv, args.out, ferplus_path=args.ferplus, size=args.size, channels=args.channels,
        split=args.split, seed=args.seed, shards=args.shards, skip_bad=args.skip_bad,
        progress=not args.quiet, ferplus_rule=args.ferplus_rule)
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"wrote {args.out}: {counts} ({manifest['label_set']['name']}, "
          f"{args.size}x{args.size}x{args.channels})")
    dropped = manifest["read"]
    if args.ferplus:
        print(f"FER+ ({args.ferplus_rule}) dropped: {dropped['ferplus_dropped_unknown_or_nf']} "
              f"unknown/NF, {dropped['ferplus_dropped_no_majority']} without a {args.ferplus_rule}")


def cmd_train(args):
    from fer_tf import logs, run
    logs.setup(verbose=True)
    metrics, export = run.train(args.model, args.data, args.model_dir,
                                overrides=_hparams(args.hparams), epochs=args.epochs,
                                max_steps=args.max_steps, eval_every_epochs=args.eval_every,
                                checkpoint_steps=args.checkpoint_steps, seed=args.seed,
                                strategy=args.strategy, skip_corrupt=args.skip_corrupt,
                                vggface2_weights=args.vggface2_weights,
                                allow_random_init=args.allow_random_init)
    if metrics is not None:
        shown = [k for k in ("accuracy", "mean_per_class_accuracy", "nme", "failure_rate_8",
                             "failure_rate_10") if k in metrics]
        print(f"final eval at step {metrics['global_step']}: "
              + ", ".join(f"{k.replace('_', ' ')} {metrics[k]:.4f}" for k in shown))
        print(f"best export: {export}" if export else
              "no export from a head trained on cached features: assemble one with "
              "`fer-tf export --model-dir ... --vggface2-weights ...`")


def cmd_cv(args):
    import statistics

    from fer_tf import logs, run
    logs.setup()
    model_dir = args.model_dir or f"runs/{args.model}_cv"
    accuracies = run.cross_validate(args.model, args.data, model_dir, args.folds,
                                    _hparams(args.hparams), args.epochs, args.seed,
                                    eval_every_epochs=args.eval_every)
    print(f"{args.model} {len(accuracies)}-fold cross-validation on {args.data}: accuracy "
          f"{statistics.mean(accuracies):.4f} ± {statistics.pstdev(accuracies):.4f} "
          f"(folds: {', '.join(f'{a:.3f}' for a in accuracies)})")


def cmd_landmarks(args):
    from fer_tf import landmark_eval, logs
    logs.setup()
    if args.evaluate:
        report = landmark_eval.evaluate(args.model, args.evaluate, png=args.ced_png)
        print(landmark_eval.format_report(report))
        return 0
    if not args.images:
        raise SystemExit("fer-tf landmarks: error: give images (or --evaluate ARCHIVE)")
    results = landmark_eval.annotate(args.model, args.images, args.annotate, args.dlib)
    failed = 0
    for path, found in results:
        if isinstance(found, str):
            failed += 1
            print(f"{path}: ERROR {found}")
        else:
            print(f"{path}: {len(found)} face(s) -> {args.annotate}")
    return 1 if failed else 0


def cmd_eval(args):
    from fer_tf import evaluate, logs
    logs.setup()
    report = evaluate.evaluate(args.model, args.data, args.split, png=args.confusion_png,
                               batch_size=args.batch_size, flip_tta=args.flip_tta)
    print(evaluate.format_report(report))


def cmd_export(args):
    from fer_tf import export, logs
    logs.setup()
    if args.tflite:
        from fer_tf import tflite
        path = tflite.convert(args.model_dir, args.out)
        print(f"exported {path}: {os.path.getsize(path) / 2**20:.2f} MiB TFLite (+ "
              f"{os.path.splitext(path)[0]}.json)")
        if args.check_data:
            check = tflite.agreement(path, args.model_dir, args.check_data, args.check_split)
            print(f"TFLite vs SavedModel on {check['faces']} {args.check_split} faces: top-1 "
                  f"agreement {check['top1_agreement']:.4f}, largest probability difference "
                  f"{check['max_prob_diff']:.2e}")
        return
    if export.is_head_run(args.model_dir):
        path = export.assemble_vggface2(args.model_dir, args.out, args.vggface2_weights,
                                        args.allow_random_init)
    else:
        path = export.export(args.model_dir, args.out, float16=args.float16)
    print(f"exported {path}: {export.total_size(path) / 2**20:.2f} MiB "
          f"(weights {export.weights_size(path) / 2**20:.2f} MiB"
          f"{', float16' if args.float16 else ''})")


def cmd_bottleneck(args):
    from fer_tf import bottleneck, logs
    logs.setup()
    manifest = bottleneck.cache_features(args.data, args.out, args.vggface2_weights,
                                         args.allow_random_init, args.width, args.batch_size,
                                         progress=not args.quiet)
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"wrote {args.out}: {manifest['feature_dim']}-d features, {counts}")


def cmd_predict(args):
    from fer_tf import logs, predict
    logs.setup()
    return predict.main(args)


def cmd_models(args):
    from fer_tf import models
    for name in models.names():
        spec = models.get(name)
        print(f"{name:10s} {'x'.join(map(str, spec.image_size)):10s} "
              f"{spec.label_set or '(from data)':12s} {spec.description}")


def build_parser():
    parser = argparse.ArgumentParser(prog="fer-tf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("records", help="convert fer2013.csv (+ FER+ votes) or GENKI-4K to TFRecords")
    p.add_argument("csv", help="fer2013.csv or fer2013.csv.gz (Kaggle format); with --dataset "
                   "genki, genki4k.tar.gz or its extracted folder")
    p.add_argument("--dataset", default="fer2013", choices=("fer2013", "genki", "landmarks"),
                   help="landmarks: landmarks68_300w.tar.gz (iBUG 300-W .pts)")
    p.add_argument("--folds", type=int, default=10, help="genki: stratified folds")
    p.add_argument("--centre-crop-fallback", action="store_true",
                   help="genki: centre-crop photos where no face is detected instead of dropping them")
    p.add_argument("--out", help="output record folder (default: records/fer2013 or records/genki)")
    p.add_argument("--ferplus", help="fer2013new.csv: use FER+ majority-vote labels (8 classes)")
    p.add_argument("--ferplus-rule", default="majority", choices=["majority", "plurality"],
                   help="majority: Microsoft's rule (single votes dropped, top > half the rest); "
                        "plurality: any unique top vote")
    p.add_argument("--size", type=int, help="output side: 48 (default), 224 for vggface2; genki 64")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--split", default="usage", choices=("usage", "stratified"),
                   help="Kaggle Usage column, or a seeded stratified 8:1:1 split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shards", type=int, default=8, help="training shards (eval/test get 1/4)")
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad rows")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_records)

    p = sub.add_parser("train", help="train_and_evaluate a registered model on a record folder")
    p.add_argument("--model", default="lenet7", help="registered model name (see `fer-tf models`)")
    p.add_argument("--data", default="records/fer2013", help="record folder")
    p.add_argument("--model-dir", required=True, help="checkpoints, events, exports; resumes")
    p.add_argument("--epochs", type=int, help="default: the model's own")
    p.add_argument("--max-steps", type=int, help="overrides --epochs")
    p.add_argument("--eval-every", type=int, default=1, help="epochs between evaluations")
    p.add_argument("--checkpoint-steps", type=int,
                   help="checkpoint (and evaluate) every N steps instead of every --eval-every epochs")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="skip unreadable records (counted and reported) instead of stopping")
    p.add_argument("--hparams", nargs="*", metavar="NAME=VALUE", help="override hyper-parameters")
    p.add_argument("--vggface2-weights", metavar="PATH",
                   help="vggface2: keras-vggface rcmalli_vggface_tf_notop_resnet50.h5 (local file)")
    p.add_argument("--allow-random-init", action="store_true",
                   help="vggface2: train from random weights (not the seed's transfer learning)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", choices=("none", "mirrored", "multi_worker", "parameter_server"),
                   default="none", help="distribution strategy; the cluster comes from TF_CONFIG")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cv", help="k-fold cross-validation over a record folder's folds (GENKI-4K)")
    p.add_argument("--model", default="smile")
    p.add_argument("--data", default="records/genki")
    p.add_argument("--model-dir", default=None, help="default: runs/MODEL_cv")
    p.add_argument("--folds", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--eval-every", type=int, default=5,
                   help="epochs between held-out evaluations (the last epoch is always evaluated)")
    p.add_argument("--hparams", nargs="*", metavar="NAME=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("eval", help="accuracy, per-class recall and confusion matrix of an export")
    p.add_argument("--model", required=True, help="SavedModel dir, or a model dir (best export)")
    p.add_argument("--data", default="records/fer2013", help="record folder")
    p.add_argument("--split", default="test", choices=("train", "eval", "test"))
    p.add_argument("--confusion-png", help="where to write the confusion matrix "
                   "(default: ./confusion_MODEL_SPLIT.png)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--flip-tta", action="store_true",
                   help="average each face's probabilities with its mirror image's")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="copy a model dir's best SavedModel to a standalone folder")
    p.add_argument("--model-dir", required=True, help="a training model dir or a SavedModel")
    p.add_argument("--out", required=True)
    p.add_argument("--float16", action="store_true",
                   help="store the weights as float16 (half the size; computation stays float32)")
    p.add_argument("--vggface2-weights", metavar="PATH",
                   help="vggface2_head runs: the base weights to assemble with the trained head")
    p.add_argument("--allow-random-init", action="store_true")
    p.add_argument("--tflite", action="store_true", help="write a .tflite model to --out instead")
    p.add_argument("--check-data", metavar="RECORDS",
                   help="with --tflite: print its agreement with the SavedModel on these records")
    p.add_argument("--check-split", default="test")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bottleneck", help="cache VGGFace2 base features of 224 records (feature extraction)")
    p.add_argument("--data", required=True, help="224x224 record folder")
    p.add_argument("--out", required=True, help="feature cache folder (train it with --model vggface2_head)")
    p.add_argument("--vggface2-weights", metavar="PATH")
    p.add_argument("--allow-random-init", action="store_true")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bottleneck)

    p = sub.add_parser("predict", help="expressions of every face in images, folders, videos, a webcam")
    p.add_argument("paths", nargs="+", help="image or video files, folders (recursive), or a "
                   "webcam index such as 0")
    p.add_argument("--model", help="SavedModel dir or model dir (default: the shipped model)")
    p.add_argument("--format", default="table", choices=("table", "jsonl", "csv"))
    p.add_argument("--output", help="write results here instead of stdout (atomically)")
    p.add_argument("--annotate", metavar="DIR", help="write annotated copies of the inputs here")
    p.add_argument("--with-landmarks", action="store_true", help="include the 68 landmarks per face")
    p.add_argument("--landmarks", choices=("dlib", "cnn"), default="dlib",
                   help="who places the landmarks used for alignment")
    p.add_argument("--landmarks-model", metavar="PATH", help="landmark SavedModel for --landmarks cnn")
    p.add_argument("--no-detect", action="store_true",
                   help="inputs are face crops already (FER2013-style): no detection")
    p.add_argument("--upsample", type=int, help="dlib upsampling for small faces (default: 1 "
                   "for images under 256 px, else 0)")
    p.add_argument("--video-stride", type=int, default=1, help="use every Nth video frame")
    p.add_argument("--max-frames", type=int, help="stop a video or webcam after N frames")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("landmarks", help="68 facial landmarks: draw them on images, or evaluate "
                       "the CNN against dlib on the 300-W test faces")
    p.add_argument("images", nargs="*")
    p.add_argument("--model", default="runs/landmarks", help="landmark SavedModel or model dir")
    p.add_argument("--annotate", default="landmarks_out", metavar="DIR")
    p.add_argument("--dlib", action="store_true", help="draw dlib's predictor instead of the CNN")
    p.add_argument("--evaluate", metavar="ARCHIVE",
                   help="landmarks68_300w.tar.gz: NME / failure rates / latency vs dlib on helen_testset")
    p.add_argument("--ced-png", default="ced.png")
    p.set_defaults(func=cmd_landmarks)

    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv=None):
    from fer_tf.errors import FerTfError
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except FerTfError as e:
        print(f"fer-tf {args.command}: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:          # `fer-tf ... | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"fer-tf {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
