"""`fer-tf records`: convert fer2013.csv (+ FER+ votes), GENKI-4K or 300-W to TFRecords."""
import sys

from fer_tf.core import outputs
from fer_tf.apps.cli.flags import whole, DETECTORS, path, class_list, DATASETS


def run(args):
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
        what = f"{', '.join(manifest.classes)}; {{side}}x{{side}}x{args.channels}"
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
        what = f"{manifest.labels.name}, {{side}}x{{side}}x{args.channels}"
    counts = ", ".join(f"{name} {split.count}" for name, split in manifest.splits.items())
    print(f"wrote {out}: {counts} ({what.format(side=manifest.side)})")
    if args.ferplus:
        read = manifest.read_stats
        print(f"FER+ ({args.ferplus_rule}) dropped: {read['ferplus_dropped_unknown_or_nf']} "
              f"unknown/NF, {read['ferplus_dropped_no_majority']} without a {args.ferplus_rule}")


def add_parser(sub, parents):
    p = sub.add_parser("records", parents=[parents.quiet],
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
    p.set_defaults(func=run)

