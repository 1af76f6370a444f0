"""The smile head trained together with the trunk: an export's whole network fine-tuned on
GENKI-4K smiles (a smile head on its hidden layer) while FER2013's training faces keep the
export's own expression probabilities (learning without forgetting), one fold held out.

    python tools/multitask_smile.py models/default --genki records/genki48_auto \
        --fer2013 records/fer2013 --fold 0          # prints the held-out fold's correct faces

docs/smile.md reports folds 0-3 against the logistic head on the unchanged trunk. An experiment
(not shipped): settings fixed beforehand, as the shipped smile network's (Adam 3e-4, cosine
decay, 12 GENKI-4K epochs, bf16).
"""
import argparse
import time

import numpy as np


def load_faces(data_dir, split):
    import tensorflow as tf
    from fer_tf.data import records
    images, labels = [], []
    for encoded, batch_labels in records.iter_split(data_dir, split, 512):
        images += [tf.io.decode_png(e, 1).numpy() for e in encoded]
        labels.append(batch_labels)
    return np.stack(images).astype(np.float32), np.concatenate(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="a vgg export (models/default)")
    parser.add_argument("--genki", required=True, help="GENKI-4K records with folds (48 px)")
    parser.add_argument("--fer2013", required=True, help="FER2013 records")
    parser.add_argument("--fold", type=int, required=True, help="the GENKI-4K fold held out")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    args = parser.parse_args()

    import tensorflow as tf
    from fer_tf import models
    from fer_tf.core import logs
    from fer_tf.data import preprocess, records
    from fer_tf.serving import exported, rebuild
    from fer_tf.training import model_fn, warm_start
    from fer_tf.training.run import session_config
    v1 = tf.compat.v1
    logs.setup()
    meta = exported.read_meta(args.export)
    spec = models.get(meta.model)
    params = {**meta.hparams, "smile_head": True}
    classes = len(meta.classes)
    manifest = records.read_manifest(args.genki)
    folds, smile = manifest.fold_count, manifest.classes.index("smile")
    parts = [load_faces(args.genki, f"fold{k}") for k in range(folds)]
    genki = np.concatenate([p[0] for p in parts])
    smiles = np.concatenate([p[1] for p in parts]) == smile
    fold_of = np.concatenate([np.full(len(p[1]), k) for k, p in enumerate(parts)])
    fer, _ = load_faces(args.fer2013, "train")

    def flip_views(images):
        return model_fn.crop_views(images, params["crop_size"], "flip")

    # The teacher: the export's own expression probabilities (centre crop and mirror averaged).
    with tf.Graph().as_default():
        faces = v1.placeholder(tf.float32, [None, *meta.image_size])
        both, views = flip_views(faces)
        logits = spec.build(spec.normalize(both), classes, False, {**params, "smile_head": False})
        mean = tf.reduce_mean(tf.reshape(tf.nn.softmax(logits), [views, -1, classes]), 0)
        with v1.Session() as session:
            rebuild.load_weights(session, {"": rebuild.weight_source(args.export)})
            teacher = np.concatenate([session.run(mean, {faces: fer[i:i + 512]})
                                      for i in range(0, len(fer), 512)]).astype(np.float32)

    train = fold_of != args.fold
    batch = 64
    steps = args.epochs * (int(train.sum()) // batch)
    with tf.Graph().as_default():
        tf.random.set_seed(0)

        def augment(image):
            return preprocess.augment(image, crop_size=params["crop_size"],
                                      erasing=params["random_erasing"])

        smile_faces = (tf.data.Dataset.from_tensor_slices((genki[train], smiles[train].astype(np.float32)))
                       .shuffle(4000, seed=1).repeat().map(lambda i, y: (augment(i), y), 4)
                       .batch(batch, drop_remainder=True))
        fer_faces = (tf.data.Dataset.from_tensor_slices((fer, teacher)).shuffle(30000, seed=2)
                     .repeat().map(lambda i, t: (augment(i), t), 4).batch(batch, drop_remainder=True))
        (smile_images, smile_labels), (fer_images, fer_teacher) = v1.data.make_one_shot_iterator(
            tf.data.Dataset.zip((smile_faces, fer_faces)).prefetch(2)).get_next()
        out = spec.build(spec.normalize(tf.concat([smile_images, fer_images], 0)), classes, True,
                         params)
        smile_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=smile_labels, logits=out["smile_logit"][:batch]))
        expression_loss = v1.losses.softmax_cross_entropy(fer_teacher, out["logits"][batch:])
        step = v1.train.get_or_create_global_step()
        rate = v1.train.cosine_decay(args.learning_rate, step, steps, alpha=0.01)
        loss = smile_loss + expression_loss + model_fn.weight_decay_loss(params)
        with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
            train_op = v1.train.AdamOptimizer(rate).minimize(loss, step)
        weights = [v for v in v1.global_variables() if v is not step and "Adam" not in v.name
                   and "_power" not in v.name]
        faces = v1.placeholder(tf.float32, [None, *meta.image_size])
        with v1.variable_scope(v1.get_variable_scope(), reuse=True):
            both, views = flip_views(faces)
            held = spec.build(spec.normalize(both), classes, False, params)
        p_smile = tf.reduce_mean(tf.reshape(tf.sigmoid(held["smile_logit"]), [views, -1]), 0)
        with v1.Session(config=session_config("bf16")) as session:
            session.run(v1.global_variables_initializer())
            reader = rebuild.weight_source(args.export)
            feeds, assigns = {}, []
            for var in weights:         # one assignment for all: each new op re-runs Grappler
                name = var.op.name
                value = (np.zeros(var.shape.as_list(), np.float32) if name.startswith(models.SMILE_HEAD)
                         else warm_start.read_float(reader, name))   # a shipped head saw every fold
                placeholder = v1.placeholder(var.dtype.base_dtype, var.shape)
                assigns.append(var.assign(placeholder))
                feeds[placeholder] = value
            session.run(assigns, feeds)
            start = time.time()
            for k in range(steps):
                _, a, b = session.run([train_op, smile_loss, expression_loss])
                if k % 100 == 0 or k == steps - 1:
                    print(f"step {k}: smile loss {a:.3f}, expression loss {b:.3f} "
                          f"({time.time() - start:.0f} s)", flush=True)
            held_out = fold_of == args.fold
            probabilities = np.concatenate([session.run(p_smile, {faces: genki[held_out][i:i + 512]})
                                            for i in range(0, int(held_out.sum()), 512)])
    right = int(((probabilities > 0.5) == smiles[held_out]).sum())
    print(f"fold {args.fold}: {right} of {int(held_out.sum())} faces right")


if __name__ == "__main__":
    main()
