"""`fer-tf train`: train_and_evaluate a registered model on a record folder."""
from fer_tf.core import outputs
from fer_tf.apps.cli.flags import whole, path, parse_hparams, model_to_train


def run(args):
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


def add_parser(sub, parents):
    p = sub.add_parser("train", parents=[parents.hparams, parents.vggface2],
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
    p.set_defaults(func=run)

