"""Logistic smile heads on an export's layers, GENKI-4K's 10 folds held out in turn: which of
the trunk's features keep the smile best (docs/smile.md). Needs scikit-learn
(`pip install scikit-learn`; not a dependency of fer-tf).

    python tools/smile_feature_heads.py models/default --data records/genki48_auto

Each face and its mirror image go through the export's own decode and network (its stored
weights); a head is fitted per fold on the other folds' views (standardised features, L2
strength C from a fixed grid) and scores the held-out faces by the mean of both views, as the
export averages them. Prints the correct faces over all folds per layer and C.
"""
import argparse

import numpy as np

LAYERS = {"last hidden layer (fc2)": "Relu_9", "first hidden layer (fc1)": "Relu_8",
          "last block, pooled": "block4_pool/MaxPool", "last convolution, before pooling": "Relu_7"}


def layer_features(export_dir, data_dir, folds):
    import tensorflow as tf
    from fer_tf import models
    from fer_tf.core.export_format import INPUT_KEY
    from fer_tf.data import preprocess, records
    from fer_tf.serving import exported, rebuild
    from fer_tf.training import model_fn
    v1 = tf.compat.v1
    meta = exported.read_meta(export_dir)
    spec = models.get(meta.model)
    height, width, channels = meta.image_size
    batches = [list(records.iter_split(data_dir, f"fold{k}", 256)) for k in range(folds)]
    with tf.Graph().as_default() as graph:
        image_bytes = v1.placeholder(tf.string, [None], name=INPUT_KEY)
        images = tf.map_fn(lambda b: preprocess.decode_image(b, height, width, channels),
                           image_bytes, fn_output_signature=tf.float32)
        both, _ = model_fn.crop_views(images, meta.crop_size, "flip")
        spec.features(spec.normalize(both), meta.hparams, len(meta.classes))
        fetch = {name: graph.get_tensor_by_name(op + ":0") for name, op in LAYERS.items()}
        out = {name: [] for name in LAYERS}
        labels, fold_of = [], []
        with v1.Session() as session:
            rebuild.load_weights(session, {"": rebuild.weight_source(export_dir)})
            for k, fold in enumerate(batches):
                for encoded, batch_labels in fold:
                    n = len(batch_labels)
                    for name, value in session.run(fetch, {image_bytes: encoded}).items():
                        value = value.reshape(len(value), -1)
                        out[name].append(np.stack([value[:n], value[n:]], axis=1))
                    labels.append(batch_labels)
                    fold_of.append(np.full(n, k))
    return ({name: np.concatenate(v) for name, v in out.items()}, np.concatenate(labels),
            np.concatenate(fold_of))


def held_out_correct(views, smiles, fold_of, c):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    correct = 0
    for k in np.unique(fold_of):
        train, test = fold_of != k, fold_of == k
        x = views[train].reshape(-1, views.shape[-1])
        scale = StandardScaler().fit(x)
        head = LogisticRegression(C=c, max_iter=300).fit(scale.transform(x), np.repeat(smiles[train], 2))
        p = np.mean([head.predict_proba(scale.transform(views[test][:, v]))[:, 1] for v in range(2)], axis=0)
        correct += int(((p > 0.5) == smiles[test]).sum())
    return correct


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="a vgg export (models/default)")
    parser.add_argument("--data", required=True, help="GENKI-4K records with folds")
    parser.add_argument("--c", type=float, nargs="+", default=[0.001, 0.003, 0.01, 0.03, 0.1])
    args = parser.parse_args()
    from fer_tf.core import logs
    from fer_tf.data import records
    logs.setup()
    manifest = records.read_manifest(args.data)
    features, labels, fold_of = layer_features(args.export, args.data, manifest.fold_count)
    smiles = labels == manifest.classes.index("smile")
    for name, views in features.items():
        for c in args.c:
            right = held_out_correct(views, smiles, fold_of, c)
            print(f"{name} ({views.shape[-1]} features), C {c:g}: {right} of {len(smiles)} faces",
                  flush=True)


if __name__ == "__main__":
    main()
