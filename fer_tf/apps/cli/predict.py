"""`fer-tf predict`: expressions of every face in images, folders, videos, a webcam."""
from fer_tf.core import outputs
from fer_tf.apps.cli.flags import whole, DETECTORS, path


def run(args):
    from fer_tf.apps import predict
    model_inputs = [args.model, args.landmarks_model]
    if args.output:
        outputs.check(args.output, "predictions", "--output", inputs=args.paths + model_inputs)
    if args.annotate:
        outputs.check(args.annotate, "annotations", "--annotate", inputs=args.paths + model_inputs,
                      walked_inputs=args.paths)
    return predict.main(args)


def add_parser(sub, parents):
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
    p.add_argument("--precision", choices=("auto", "float32", "bf16"), default="auto",
                   help="auto: bfloat16 arithmetic where the CPU has it (AVX-512 BF16, AMX), about "
                        "twice the faces/s; float32 elsewhere")
    p.add_argument("--no-smile", action="store_true",
                   help="leave out the smile probability (the shipped smile model)")
    p.add_argument("--workers", type=whole(1, 64),
                   help="threads that detect and align faces while the main thread classifies "
                        "(default: 2 with BlazeFace, 1 with dlib; see the README)")
    p.add_argument("--upsample", type=whole(0, 3), help="dlib upsampling for small faces "
                   "(default: 1 for images under 256 px, else 0)")
    p.add_argument("--video-stride", type=whole(1), default=1, help="use every Nth video frame")
    p.add_argument("--max-frames", type=whole(1), help="stop a video or webcam after N frames")
    p.set_defaults(func=run)

