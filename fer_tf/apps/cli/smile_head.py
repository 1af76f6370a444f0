"""`fer-tf smile-head`: add a smile head on an export's own trunk (one pass per face)."""
from fer_tf.core import outputs
from fer_tf.apps.cli.flags import path


def run(args):
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


def add_parser(sub, parents):
    p = sub.add_parser("smile-head",
                       help="add a smile head on an export's own trunk (one pass per face)")
    p.add_argument("model", help="a single-network export with a shared trunk (dlib_resnet)")
    p.add_argument("--data", default="records/genki48_auto", help="smile records with folds")
    p.add_argument("--out", type=path, required=True, help="the export with its smile head")
    storage = p.add_mutually_exclusive_group()
    storage.add_argument("--float16", action="store_true", help="store weights as float16")
    storage.add_argument("--int8", action="store_true", help="store kernels as int8")
    p.set_defaults(func=run)

