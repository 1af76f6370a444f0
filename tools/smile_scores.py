"""Score GENKI-4K smiles with expression models, smile models and their average, on held-out faces.

Each member gives every face a smile score: an expression model (FER2013 or FER+) its
probability of happy / happiness — it never saw GENKI-4K, so every fold is held out for it; a
cross-validation dir (`fer-tf cv`, `--cv DIR`) the probability of "smile" from the fold model
that did not train on that fold. A face counts as a smile when its score, or the plain mean of
the members' scores, exceeds 0.5: no threshold or weight is fitted, so nothing is chosen on the
faces being scored. Photos where no face was found count as errors over all photos.

    python tools/smile_scores.py models/default models/vgg_ferplus --data records/genki48_auto \
        [--cv runs/smile_kd_auto_cv]

Ends by printing the mean's accuracy over all photos.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")      # no C++ start-up noise

SMILE_CLASSES = ("happy", "happiness", "smile")


def smile_column(model, flag):
    from fer_tf.core.errors import FerTfError
    for name in SMILE_CLASSES:
        if name in model.label_set.classes:
            return model.label_set.classes.index(name)
    raise FerTfError(f"{flag} {model.path}: label set {model.label_set.name} has no "
                     f"{' / '.join(SMILE_CLASSES)} class to score smiles with")


def fold_faces(data_dir, folds):
    """[(encoded faces, labels)] of folds 0..k-1, read once for every member."""
    from fer_tf.data import records
    faces = []
    for k in range(folds):
        encoded, labels = zip(*records.iter_split(data_dir, f"fold{k}", 256))
        faces.append((np.concatenate(encoded), np.concatenate(labels)))
    return faces


def member_scores(faces, path, cross_validation):
    """Smile scores over the folds in order: one model on every fold, or, for a
    cross-validation dir, fold model k on fold k."""
    from fer_tf.serving import exported
    flag = "--cv" if cross_validation else "model"
    scores = []
    for k, (encoded, _) in enumerate(faces):
        if k == 0 or cross_validation:
            model = exported.ExportedModel(os.path.join(path, f"fold{k}") if cross_validation
                                           else path, flag=flag)
            column = smile_column(model, flag)
        scores.append(np.concatenate([model.predict(encoded[i:i + 256])[:, column]
                                      for i in range(0, len(encoded), 256)]))
    return np.concatenate(scores)


def report(name, scores, labels, photos):
    from fer_tf.apps.evaluate import roc_auc
    correct = int(np.sum((scores > 0.5) == (labels == 1)))
    accuracy = correct / photos
    print(f"{name}: {correct} of {len(labels)} faces right, {accuracy:.4f} of all {photos} "
          f"photos (AUC {roc_auc(scores, labels):.4f})", flush=True)
    return accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="expression exports or model dirs")
    parser.add_argument("--cv", action="append", default=[], metavar="DIR",
                        help="a cross-validation dir of smile models (fold0 ... foldK-1)")
    parser.add_argument("--data", required=True, help="smile record folder with folds")
    args = parser.parse_args()
    if not args.models and not args.cv:
        parser.error("give at least one model or --cv dir")
    from fer_tf.core import logs
    from fer_tf.data import records
    from fer_tf.core.errors import FerTfError
    logs.setup()
    try:
        manifest = records.read_manifest(args.data)
        folds = manifest.fold_count
        if not folds or manifest.labels.name != "smile2":
            raise FerTfError(f"--data {args.data}: not smile records with folds; convert "
                             "GENKI-4K with `fer-tf records --dataset genki`")
        all_folds = "+".join(f"fold{k}" for k in range(folds))
        photos = manifest.photos or manifest.split_count(all_folds)
        faces = fold_faces(args.data, folds)
        labels = np.concatenate([fold_labels for _, fold_labels in faces])
        members = []
        for path, cross_validation in ([(m, False) for m in args.models]
                                       + [(d, True) for d in args.cv]):
            scores = member_scores(faces, path, cross_validation)
            members.append(scores)
            report(path, scores, labels, photos)
    except FerTfError as e:
        sys.exit(f"smile_scores: {e}")
    accuracy = report("mean of all", np.mean(members, axis=0), labels, photos)
    print(f"accuracy over all {photos} photos: {accuracy:.4f}")


if __name__ == "__main__":
    main()
