"""`fer-tf cv`: k-fold cross-validation over a record folder's folds (GENKI-4K)."""
import statistics

from fer_tf.core import outputs
from fer_tf.apps.cli.flags import whole, path, parse_hparams, model_to_train


def run(args):
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


def add_parser(sub, parents):
    p = sub.add_parser("cv", parents=[parents.hparams],
                       help="k-fold cross-validation over a record folder's folds (GENKI-4K)")
    p.add_argument("--model", help="default: the --init-from export's, else smile")
    p.add_argument("--data", default="records/genki")
    p.add_argument("--model-dir", type=path, default=None, help="default: runs/MODEL_cv")
    p.add_argument("--folds", type=whole(2, 100), help="default: the folds in the records")
    p.add_argument("--epochs", type=whole(1))
    p.add_argument("--eval-every", type=whole(1), default=5,
                   help="epochs between held-out evaluations (the last epoch is always evaluated)")
    p.set_defaults(func=run)

