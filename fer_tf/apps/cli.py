"""`fer-tf records|train|cv|eval|export|ensemble|bottleneck|predict|landmarks|models`: the CLI.

Each subcommand is one small function over the library. Every flag is checked when parsed and
every output path before work starts (`fer_tf.core.outputs`): a problem the user can fix ends with one
line on stderr naming the flag or file — exit status 2 for a bad flag value, 1 otherwise.
"""
import argparse
import ast
import os
import re
import signal
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide C++ start-up noise (CUDA probing)

from fer_tf.core import outputs  # noqa: E402  (light: no TensorFlow)
from fer_tf.core.errors import FerTfError, UsageError  # noqa: E402

# ---- flag value types: each names what is allowed --------------------------------------------

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


path.__name__ = "path"


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


# ---- subcommands ----------------------------------------------------------------------------

DATASETS = ("fer2013", "genki", "landmarks", "folder", "csv")


def cmd_records(args):
    from fer_tf.data import convert
    out = args.out or f"records/{args.dataset}"
    outputs.check(out, "records", "--out", inputs=[args.csv, args.ferplus],
                  walked_inputs=[args.csv] if args.dataset == "folder" else ())
    size = {"size": args.size} if args.size is not None else {}   # else the converter's default
    progress = not args.quiet
    if args.dataset in ("folder", "csv"):
        manifest = convert.convert_photos(
            args.csv, out, args.dataset, channels=args.channels, seed=args.seed,
            classes=args.classes, centre_crop_fallback=args.centre_crop_fallback,
            detector=args.detector or DETECTORS[0], shards=args.shards, progress=progress,
            log=lambda message: print(message, file=sys.stderr), **size)
        what = f"{', '.join(manifest['label_set']['classes'])}; {{side}}x{{side}}x{args.channels}"
    elif args.dataset == "landmarks":
        manifest = convert.convert_landmarks(args.csv, out, seed=args.seed, progress=progress,
                                             **size)
        what = "68 points, {side}px crops"
    elif args.dataset == "genki":
        manifest = convert.convert_genki(args.csv, out, channels=args.channels, folds=args.folds,
                                         seed=args.seed,
                                         centre_crop_fallback=args.centre_crop_fallback,
                                         detector=args.detector or "dlib", progress=progress,
                                         **size)
        what = "smile2, {side}px"
    else:
        manifest = convert.convert_fer2013(
            args.csv, out, ferplus_path=args.ferplus, channels=args.channels, split=args.split,
            seed=args.seed, shards=args.shards, skip_bad=args.skip_bad, progress=progress,
            ferplus_rule=args.ferplus_rule, **size)
        what = f"{manifest['label_set']['name']}, {{side}}x{{side}}x{args.channels}"
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"wrote {out}: {counts} ({what.format(side=manifest['image']['height'])})")
    if args.ferplus:
        read = manifest["read"]
        print(f"FER+ ({args.ferplus_rule}) dropped: {read['ferplus_dropped_unknown_or_nf']} "
              f"unknown/NF, {read['ferplus_dropped_no_majority']} without a {args.ferplus_rule}")


def model_to_train(args, default):
    """--model; else the architecture of --init-from (fine-tuning needs the same one); else
    `default`."""
    if args.model:
        return args.model
    if args.init_from:
        from fer_tf.training import warm_start
        return warm_start.source(args.init_from)[1].get("model") or default
    return default


def cmd_train(args):
    from fer_tf import models
    from fer_tf.training import run, tasks
    args.model = model_to_train(args, "lenet7")
    if run.cluster_task_type() in (None, "chief", "master"):
        outputs.check(args.model_dir, "model_dir", "--model-dir",
                      inputs=[args.data, args.init_from, args.teacher])
    metrics, export = run.train(args.model, args.data, args.model_dir,
                                overrides=parse_hparams(args.hparams), epochs=args.epochs,
                                max_steps=args.max_steps, eval_every_epochs=args.eval_every,
                                checkpoint_steps=args.checkpoint_steps, seed=args.seed,
                                strategy=args.strategy, skip_corrupt=args.skip_corrupt,
                                vggface2_weights=args.vggface2_weights,
                                allow_random_init=args.allow_random_init,
                                progress_bar=not args.verbose, init_from=args.init_from,
                                teacher=args.teacher,
                                splits={"train": args.train_split, "eval": args.eval_split})
    if metrics is not None:
        shown = tasks.of(models.get(args.model)).shown
        print(f"final eval at step {metrics['global_step']}: "
              + ", ".join(f"{k.replace('_', ' ')} {metrics[k]:.4f}" for k in shown))
        print(f"best export: {export}" if export else
              "no export from a head trained on cached features: assemble one with "
              "`fer-tf export --model-dir ... --vggface2-weights ...`")


def cmd_cv(args):
    from fer_tf.training import run
    args.model = model_to_train(args, "smile")
    model_dir = args.model_dir or f"runs/{args.model}_cv"
    outputs.check(model_dir, "cv_dir", "--model-dir",
                  inputs=[args.data] + ([args.init_from] if args.init_from else []))
    accuracies = run.cross_validate(args.model, args.data, model_dir, args.folds,
                                    parse_hparams(args.hparams), args.epochs, args.seed,
                                    eval_every_epochs=args.eval_every, init_from=args.init_from)
    print(f"{args.model} {len(accuracies)}-fold cross-validation on {args.data}: accuracy "
          f"{statistics.mean(accuracies):.4f} ± {statistics.pstdev(accuracies):.4f} "
          f"(folds: {', '.join(f'{a:.3f}' for a in accuracies)})")


def _landmark_models(paths):
    """--model values, or the shipped compact landmark model."""
    if paths:
        return paths
    from fer_tf.serving import exported
    return [exported.shipped_model("landmarks")]


def cmd_landmarks(args):
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
    for path, found in results:
        if isinstance(found, str):
            failed += 1
            print(f"{path}: ERROR {found}")
        else:
            print(f"{path}: {len(found)} face(s) -> {args.annotate}")
    return 1 if failed else 0


def cmd_eval(args):
    from fer_tf.apps import evaluate
    from fer_tf.serving import exported
    model_dir = exported.resolve_export(args.model)
    png = args.confusion_png or f"confusion_{exported.read_meta(model_dir)['model']}_{args.split}.png"
    outputs.check(png, "png", "--confusion-png", inputs=[args.model, args.data])
    tta = "flip" if args.flip_tta else args.tta
    report = evaluate.evaluate(args.model, args.data, args.split, png=png,
                               batch_size=args.batch_size, tta=None if tta == "none" else tta)
    print(evaluate.format_report(report))


def cmd_soft_labels(args):
    from tqdm import tqdm
    from fer_tf.apps import distill
    outputs.check(args.out, "soft_labels", "--out", inputs=[args.model, args.data])
    meta = distill.label_split(
        args.model, args.data, args.split, args.out,
        progress_bar=lambda total: tqdm(total=total, desc="teacher", unit=" faces",
                                        disable=args.quiet))
    print(f"wrote {args.out}: {meta['count']} {args.split} faces of {args.data}; the teacher's "
          f"accuracy on them {meta['teacher_accuracy']:.4f}")


def cmd_smile_head(args):
    from fer_tf.apps import smile_head
    from fer_tf.serving import export
    outputs.check(args.out, "export", "--out", inputs=[args.model, args.data])
    report = smile_head.fit(args.model, args.data, args.out,
                            export.storage_of(args.float16, args.int8) if (args.float16 or args.int8)
                            else "float32", log=print)
    print(f"smile head: {report['correct']} of {report['faces']} faces right over "
          f"{report['folds']} held-out folds ({report['accuracy_faces']:.4f}; "
          f"{report['accuracy_all_photos']:.4f} of all {report['photos']} photos, a photo "
          f"without a face counted wrong); wrote {args.out}")


def cmd_export(args):
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
    if export.is_head_run(args.model_dir):
        path = export.assemble_vggface2(args.model_dir, args.out, args.vggface2_weights,
                                        args.allow_random_init)
    else:
        path = export.export(args.model_dir, args.out, float16=args.float16,
                             tta=None if args.tta == "none" else args.tta, int8=args.int8,
                             prior=prior)
    print(f"exported {path}: {export.total_size(path) / 2**20:.2f} MiB "
          f"(weights {export.weights_size(path) / 2**20:.2f} MiB{storage_note(args)})")


def storage_note(args):
    return ", float16" if args.float16 else ", int8 kernels" if args.int8 else ""


def cmd_ensemble(args):
    from fer_tf.serving import export
    outputs.check(args.out, "export", "--out", inputs=[*args.members, args.prior_data])
    path = export.ensemble(args.members, args.out, weights=args.weights, float16=args.float16,
                           tta=None if args.tta == "none" else args.tta, int8=args.int8,
                           prior=prior_of(args))
    print(f"exported {path}: ensemble of {len(args.members)}, {export.total_size(path) / 2**20:.2f} "
          f"MiB (weights {export.weights_size(path) / 2**20:.2f} MiB{storage_note(args)})")


def cmd_bottleneck(args):
    from fer_tf.training import bottleneck
    outputs.check(args.out, "records", "--out", inputs=[args.data])
    manifest = bottleneck.cache_features(args.data, args.out, args.vggface2_weights,
                                         args.allow_random_init, args.width, args.batch_size,
                                         progress=not args.quiet)
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"wrote {args.out}: {manifest['feature_dim']}-d features, {counts}")


def cmd_predict(args):
    from fer_tf.apps import predict
    model_inputs = [args.model, args.landmarks_model]
    if args.output:
        outputs.check(args.output, "predictions", "--output", inputs=args.paths + model_inputs)
    if args.annotate:
        outputs.check(args.annotate, "annotations", "--annotate", inputs=args.paths + model_inputs,
                      walked_inputs=args.paths)
    return predict.main(args)


def cmd_models(args):
    from fer_tf import models
    for name in models.names():
        spec = models.get(name)
        print(f"{name:10s} {'x'.join(map(str, spec.image_size)):10s} "
              f"{spec.label_set or '(from data)':12s} {spec.description}")


# ---- the parser -----------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `fer-tf train: error: --epochs: '-3' is not allowed; ...`"""

    def error(self, message):
        message = re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[-1] + ": ",
                         message)
        self.exit(2, f"{self.prog}: error: {message}\n")


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
    return hparams, vggface2, quiet


def build_parser():
    hparams, vggface2, quiet = _parents()
    parser = Parser(prog="fer-tf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("records", parents=[quiet],
                       help="convert fer2013.csv (+ FER+ votes), GENKI-4K or 300-W to TFRecords")
    p.add_argument("csv", help="fer2013.csv or fer2013.csv.gz (Kaggle format); with --dataset "
                   "genki or landmarks, the archive or its extracted folder; with --dataset "
                   "folder, a folder with one sub-folder per class; with --dataset csv, a csv "
                   "of path,label[,split]")
    p.add_argument("--dataset", default="fer2013", choices=DATASETS)
    p.add_argument("--out", type=path, help="output record folder (default: records/DATASET)")
    p.add_argument("--size", type=whole(8, 1024),
                   help="output side (default: fer2013, folder, csv 48 — 224 for vggface2 —, "
                        "genki 64, landmarks 128)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--ferplus", help="fer2013new.csv: use FER+ majority-vote labels (8 classes)")
    p.add_argument("--ferplus-rule", default="majority", choices=["majority", "plurality"],
                   help="majority: Microsoft's rule (single votes dropped, top > half the rest); "
                        "plurality: any unique top vote")
    p.add_argument("--split", default="usage", choices=("usage", "stratified"),
                   help="Kaggle Usage column, or a seeded stratified 8:1:1 split")
    p.add_argument("--folds", type=whole(2, 100), default=10, help="genki: stratified folds")
    p.add_argument("--centre-crop-fallback", action="store_true",
                   help="genki, folder, csv: centre-crop photos where no face is detected instead "
                        "of dropping them")
    p.add_argument("--classes", type=class_list, metavar="A,B,...",
                   help="folder, csv: the classes in label order (default: every class found, "
                        "sorted); photos of other classes are left out")
    p.add_argument("--detector", choices=DETECTORS,
                   help="genki, folder, csv: the face detector (as in predict; default: "
                        "blazeface_auto for folder and csv, dlib for genki — the seed's recipe)")
    p.add_argument("--seed", type=whole(0), default=0)
    p.add_argument("--shards", type=whole(1, 1024), default=8,
                   help="training shards (eval/test get 1/4)")
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad rows")
    p.set_defaults(func=cmd_records)

    p = sub.add_parser("train", parents=[hparams, vggface2],
                       help="train_and_evaluate a registered model on a record folder")
    p.add_argument("--model", help="registered model name (see `fer-tf models`; default: the "
                                   "--init-from export's, else lenet7)")
    p.add_argument("--data", default="records/fer2013", help="record folder")
    p.add_argument("--model-dir", type=path, required=True, help="checkpoints, events, exports; resumes")
    p.add_argument("--epochs", type=whole(1), help="default: the model's own")
    p.add_argument("--max-steps", type=whole(1), help="overrides --epochs")
    p.add_argument("--train-split", default="train", metavar="SPLIT",
                   help="record split(s) to train on, e.g. fold0+fold1+...+fold9 (default: train)")
    p.add_argument("--eval-split", default="eval", metavar="SPLIT",
                   help="record split that selects the best export (default: eval)")
    p.add_argument("--eval-every", type=whole(1), default=1, help="epochs between evaluations")
    p.add_argument("--checkpoint-steps", type=whole(1),
                   help="checkpoint (and evaluate) every N steps instead of every --eval-every epochs")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="skip unreadable records (counted and reported) instead of stopping")
    p.add_argument("--strategy", choices=("none", "mirrored", "multi_worker", "parameter_server"),
                   default="none", help="distribution strategy; the cluster comes from TF_CONFIG")
    p.add_argument("--teacher", metavar="FILE",
                   help="distil: a teacher's probabilities for the training faces (`fer-tf "
                        "soft-labels`), weighted by --hparams distill_weight (default 0.5)")
    p.add_argument("--verbose", action="store_true",
                   help="TensorFlow's own logging instead of the progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cv", parents=[hparams],
                       help="k-fold cross-validation over a record folder's folds (GENKI-4K)")
    p.add_argument("--model", help="default: the --init-from export's, else smile")
    p.add_argument("--data", default="records/genki")
    p.add_argument("--model-dir", type=path, default=None, help="default: runs/MODEL_cv")
    p.add_argument("--folds", type=whole(2, 100), help="default: the folds in the records")
    p.add_argument("--epochs", type=whole(1))
    p.add_argument("--eval-every", type=whole(1), default=5,
                   help="epochs between held-out evaluations (the last epoch is always evaluated)")
    p.set_defaults(func=cmd_cv)

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
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("soft-labels", parents=[quiet],
                       help="a teacher export's probabilities for a record split (distillation)")
    p.add_argument("model", help="teacher: SavedModel dir (an ensemble, say) or a model dir")
    p.add_argument("--data", default="records/fer2013", help="record folder")
    p.add_argument("--split", default="train", help="record split (default: train)")
    p.add_argument("--out", type=path, required=True, help="soft-label file to write (.npz)")
    p.set_defaults(func=cmd_soft_labels)

    p = sub.add_parser("smile-head",
                       help="add a smile head on an export's own trunk (one pass per face)")
    p.add_argument("model", help="a single-network export with a shared trunk (dlib_resnet)")
    p.add_argument("--data", default="records/genki48_auto", help="smile records with folds")
    p.add_argument("--out", type=path, required=True, help="the export with its smile head")
    storage = p.add_mutually_exclusive_group()
    storage.add_argument("--float16", action="store_true", help="store weights as float16")
    storage.add_argument("--int8", action="store_true", help="store kernels as int8")
    p.set_defaults(func=cmd_smile_head)

    p = sub.add_parser("export", parents=[vggface2],
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
    p.set_defaults(func=cmd_export)

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
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("bottleneck", parents=[vggface2, quiet],
                       help="cache VGGFace2 base features of 224 records (feature extraction)")
    p.add_argument("--data", required=True, help="224x224 record folder")
    p.add_argument("--out", type=path, required=True, help="feature cache folder (train it with --model vggface2_head)")
    p.add_argument("--batch-size", type=whole(1, 4096), default=32)
    p.add_argument("--width", type=fraction, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bottleneck)

    p = sub.add_parser("predict", help="expressions of every face in images, folders, videos, a webcam")
    p.add_argument("paths", nargs="+", help="image or video files, folders (recursive), or a "
                   "webcam index such as 0")
    p.add_argument("--model", help="SavedModel dir or model dir (default: the shipped model)")
    p.add_argument("--format", default="table", choices=("table", "jsonl", "csv"))
    p.add_argument("--output", type=path, help="write results here as they come (finalised on Ctrl-C)")
    p.add_argument("--annotate", type=path, metavar="DIR", help="write annotated copies of the inputs here")
    p.add_argument("--with-landmarks", action="store_true", help="include the 68 landmarks per face")
    p.add_argument("--landmarks", choices=("dlib", "cnn"), default="dlib",
                   help="who places the landmarks used for alignment")
    p.add_argument("--landmarks-model", metavar="PATH",
                   help="landmark SavedModel for --landmarks cnn (default: the shipped one)")
    p.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0],
                   help="face detector: BlazeFace's short-range model, and its full-range one "
                        "for wide shots and group photos (default; aligns on its eye keypoints), "
                        "BlazeFace short range only, or dlib's HOG detector + 68-point alignment "
                        "(the seed's pipeline)")
    p.add_argument("--no-detect", action="store_true",
                   help="inputs are face crops already (FER2013-style): no detection")
    p.add_argument("--align", type=int, choices=(68, 5), default=68,
                   help="with --detector dlib: align on the eyes of dlib's 68-point predictor "
                        "(the seed's pipeline) or its 5-point one (faster)")
    p.add_argument("--no-smile", action="store_true",
                   help="leave out the smile probability (the shipped smile model)")
    p.add_argument("--workers", type=whole(1, 64),
                   help="threads that detect and align faces while the main thread classifies "
                        "(default: 2 with BlazeFace, 1 with dlib; see the README)")
    p.add_argument("--upsample", type=whole(0, 3), help="dlib upsampling for small faces "
                   "(default: 1 for images under 256 px, else 0)")
    p.add_argument("--video-stride", type=whole(1), default=1, help="use every Nth video frame")
    p.add_argument("--max-frames", type=whole(1), help="stop a video or webcam after N frames")
    p.set_defaults(func=cmd_predict)

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
    p.set_defaults(func=cmd_landmarks)

    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(func=cmd_models)
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
