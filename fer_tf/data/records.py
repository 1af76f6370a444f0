"""The tf.train.Example schema of fer-tf records: sharded writing, the manifest, and parsing.

Each example holds one face: PNG bytes, height, width, channels, label, source row and, for FER+,
the 10 annotator votes. A record folder holds `SPLIT-NNNNN-of-MMMMM.tfrecord` shards and a
`manifest.json` that says what is inside (counts, image size, label set, source checksum).
"""
import dataclasses
import hashlib
import os

import cv2
import numpy as np
import tensorflow as tf

from fer_tf.core import atomic, outputs
from fer_tf.core import labels as label_sets
from fer_tf.core.errors import FerTfError

MANIFEST = "manifest.json"
FORMAT = outputs.RECORDS_FORMAT
NUM_VOTES = 10


def encode_png(image):
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def make_example(image, label, source_row, votes=None, pose=None):
    """image: uint8 HxW or HxWxC (C=1 grey, C=3 RGB)."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    height, width, channels = image.shape
    # OpenCV writes BGR; records are RGB, so flip the channel order before encoding.
    png = encode_png(image[:, :, ::-1] if channels == 3 else image)
    int64 = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
        "image/height": int64([height]),
        "image/width": int64([width]),
        "image/channels": int64([channels]),
        "label": int64([int(label)]),
        "source/row": int64([int(source_row)]),
    }
    if votes is not None:
        feature["ferplus/votes"] = int64([int(v) for v in votes])
    if pose is not None:      # GENKI-4K head pose: yaw, pitch, roll (radians)
        feature["pose"] = tf.train.Feature(float_list=tf.train.FloatList(value=list(pose)))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def make_landmark_example(crop, points, window, box, box_source, name):
    """A landmark face: RGB crop, 68 crop-normalised points, the crop window (x0, y0, side) and
    face box in photo pixels, where the box came from, and subset/name of the source photo."""
    png = encode_png(np.asarray(crop, np.uint8)[:, :, ::-1])
    floats = lambda v: tf.train.Feature(float_list=tf.train.FloatList(value=[float(x) for x in v]))
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
        "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[crop.shape[0]])),
        "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[crop.shape[1]])),
        "image/channels": tf.train.Feature(int64_list=tf.train.Int64List(value=[3])),
        "points": floats(np.asarray(points).ravel()),
        "window": floats(window),
        "box": floats(box),
        "box/source": tf.train.Feature(bytes_list=tf.train.BytesList(value=[box_source.encode()])),
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
    }))


def landmark_feature_spec():
    return {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "points": tf.io.FixedLenFeature([136], tf.float32),
        "window": tf.io.FixedLenFeature([3], tf.float32),
        "box": tf.io.FixedLenFeature([4], tf.float32),
        "name": tf.io.FixedLenFeature([], tf.string),
    }


def shard_name(split, index, count):
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


class ShardedWriter:
    """Round-robin writer over a fixed number of shards per split (so it can stream)."""

    def __init__(self, directory, splits, shards_per_split, num_classes):
        self.directory = directory
        self.num_classes = num_classes
        self.writers = {}
        self.files = {}
        self.counts = {s: np.zeros(num_classes, dtype=np.int64) for s in splits}
        self.next_shard = {s: 0 for s in splits}
        for split in splits:
            n = shards_per_split[split]
            self.files[split] = [shard_name(split, i, n) for i in range(n)]
            self.writers[split] = [tf.io.TFRecordWriter(os.path.join(directory, f))
                                   for f in self.files[split]]

    def write(self, split, example, label):
        shard = self.next_shard[split]
        self.writers[split][shard].write(example.SerializeToString())
        self.next_shard[split] = (shard + 1) % len(self.writers[split])
        self.counts[split][label] += 1

    def close(self):
        for writers in self.writers.values():
            for w in writers:
                w.close()

    def split_summary(self):
        return {s: {"count": int(c.sum()), "per_class": [int(x) for x in c],
                    "shards": self.files[s]} for s, c in self.counts.items()}


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of_checked(path):
    try:
        return sha256_of(path)
    except FileNotFoundError:
        raise FerTfError(f"{path}: no such file; check the path") from None
    except (IsADirectoryError, PermissionError) as e:
        raise FerTfError(f"{path}: cannot read ({e.strerror}); pass a readable file") from None


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a record folder: its examples, per class, and the shards holding them."""
    count: int
    per_class: list
    shards: list


def _invalid(path, field, problem):
    return FerTfError(f"{path}: field {field!r} {problem}; rerun `fer-tf records` with this version")


@dataclasses.dataclass
class Manifest(label_sets.WithLabelSet):
    """A record folder's manifest.json, typed — the one reader, validator and writer of it: what
    the folder holds (`kind`: images, features or landmarks), its label set, image size, splits,
    where it came from and with which options; `extra` holds what one converter adds (read
    statistics, folds, detection counts ...), read through the properties below. `folder` is
    where it was read from (not written)."""
    dataset: str
    label_set: dict
    splits: dict                       # split name -> Split
    source: dict
    options: dict
    image: dict = None                 # {"height", "width", "channels", "encoding"}
    kind: str = "images"
    has_votes: bool = False
    extra: dict = dataclasses.field(default_factory=dict)
    folder: str = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        self.splits = {name: s if isinstance(s, Split) else Split(**s)
                       for name, s in self.splits.items()}

    @staticmethod
    def image_info(size, channels):
        return {"height": size, "width": size, "channels": channels, "encoding": "png"}

    def to_json(self):
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("extra", "folder")}
        return {"format": FORMAT, **fields, **self.extra}

    @classmethod
    def from_json(cls, data, path, folder=None):
        """Validated: a manifest of another format or missing a field is refused in one line."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise FerTfError(f"{path}: format {found!r} is not {FORMAT!r}; rerun "
                             "`fer-tf records` with this version")
        names = [f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "folder")]
        for field in ("dataset", "label_set", "splits", "source", "options"):
            if field not in data:
                raise _invalid(path, field, "is missing")
        if not label_sets.is_json(data["label_set"]):
            raise _invalid(path, "label_set", "needs a name and a list of classes")
        if data.get("kind", "images") not in RECORD_SPECS:
            raise _invalid(path, "kind", f"is {data['kind']!r}, not one of {', '.join(RECORD_SPECS)}")
        splits = data["splits"]
        if not isinstance(splits, dict):
            raise _invalid(path, "splits", "is not a mapping of split names")
        for name, split in splits.items():
            if not (isinstance(split, dict) and set(split) == {"count", "per_class", "shards"}
                    and isinstance(split["count"], int) and isinstance(split["shards"], list)):
                raise _invalid(path, f"splits.{name}", "needs count, per_class and shards")
        known = {k: data[k] for k in names if k in data}
        extra = {k: v for k, v in data.items() if k not in names and k != "format"}
        return cls(**known, extra=extra, folder=folder)

    # What converters add, typed (None where this folder's converter does not write it).
    @property
    def fold_count(self):
        """GENKI-4K's folds (`fold0` ...), or None."""
        return (self.extra.get("folds") or {}).get("count")

    @property
    def photos(self):
        """Photos the converter read (faces found or not), for detection-based converters."""
        return (self.extra.get("faces") or {}).get("photos")

    @property
    def feature_dim(self):
        """The width of a bottleneck cache's feature vectors."""
        return self.extra.get("feature_dim")

    @property
    def read_stats(self):
        """The FER2013 csv reader's statistics (rows read, dropped ...)."""
        return self.extra.get("read")

    @property
    def split_aliases(self):
        return self.extra.get("split_aliases") or {}

    @property
    def side(self):
        return self.image["height"]

    def resolve_split(self, split):
        """A split name -> the stored splits it stands for: itself, an alias from the manifest
        (GENKI's train = fold0+...+fold7), or an explicit `fold1+fold2` union."""
        parts = self.split_aliases.get(split, split).split("+")
        unknown = [p for p in parts if p not in self.splits]
        if unknown:
            known = sorted(self.splits) + sorted(self.split_aliases)
            raise FerTfError(f"no split {unknown[0]!r} (the folder has {', '.join(known)})")
        return parts

    def split_count(self, split):
        return sum(self.splits[p].count for p in self.resolve_split(split))

    def split_per_class(self, split):
        return [sum(col) for col in zip(*(self.splits[p].per_class
                                          for p in self.resolve_split(split)))]

    def split_files(self, split):
        """The shard paths of a split, checked to exist and to hold examples."""
        paths = []
        for part in self.resolve_split(split):
            if self.splits[part].count == 0:
                raise FerTfError(f"{os.path.join(self.folder, MANIFEST)}: split {part!r} is empty; "
                                 "reconvert with data for it (or --split stratified)")
            paths.extend(os.path.join(self.folder, f) for f in self.splits[part].shards)
        for p in paths:
            if not os.path.isfile(p):
                raise FerTfError(f"{p}: record shard listed in the manifest is missing; rerun "
                                 "`fer-tf records`")
        return paths

    def expected_shard_counts(self, split):
        """Records per shard: the writer deals examples round-robin, so shard i holds n//S (+1
        for the first n%S shards)."""
        counts = {}
        for part in self.resolve_split(split):
            info = self.splits[part]
            n, shards = info.count, len(info.shards)
            counts.update({name: n // shards + (1 if i < n % shards else 0)
                           for i, name in enumerate(info.shards)})
        return counts

    def record_spec(self):
        """The parse spec of this folder's examples, by its kind."""
        return RECORD_SPECS[self.kind](self)


def write_manifest(folder, manifest):
    """Write a Manifest into a record folder being built; returns it."""
    atomic.write_json(os.path.join(folder, MANIFEST), manifest.to_json())
    return manifest


def read_manifest(directory):
    """The folder's Manifest, validated."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isdir(directory):
        raise FerTfError(f"{directory}: no such record folder; create it with `fer-tf records` "
                         "(or `make records`)")
    data = atomic.read_json(path, f"{directory} is not a finished record folder; rerun "
                                  "`fer-tf records`")
    return Manifest.from_json(data, path, folder=directory)


def scan_shard(path):
    """(readable records, None) or (readable records before the damage, what went wrong)."""
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path).batch(256):
            count += int(_.shape[0])
    except tf.errors.DataLossError as e:
        # Re-count one by one to know how many came before the damage.
        count = 0
        try:
            for _ in tf.data.TFRecordDataset(path):
                count += 1
        except tf.errors.DataLossError:
            pass
        return count, e.message.split("}}")[-1].split("[Op:")[0].strip()
    return count, None


def damaged_shards(manifest, split):
    """[(path, readable, expected, problem)] for every shard of a split that is not intact."""
    damaged = []
    for name, expected in manifest.expected_shard_counts(split).items():
        path = os.path.join(manifest.folder, name)
        readable, problem = scan_shard(path)
        if problem or readable != expected:
            damaged.append((path, readable, expected, problem or "fewer records than the manifest says"))
    return damaged


def feature_spec(has_votes):
    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/channels": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "source/row": tf.io.FixedLenFeature([], tf.int64),
    }
    if has_votes:
        spec["ferplus/votes"] = tf.io.FixedLenFeature([NUM_VOTES], tf.int64)
    return spec


def _feature_vector_spec(manifest):
    return {"features": tf.io.FixedLenFeature([manifest.feature_dim], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.int64)}


# A record folder's kind (its manifest's `kind`) -> the parse spec of its examples.
RECORD_SPECS = {"images": lambda manifest: feature_spec(manifest.has_votes),
                "landmarks": lambda manifest: landmark_feature_spec(),
                "features": _feature_vector_spec}


def undecodable_records(manifest, split):
    """[(path, index, problem)]: records whose bytes pass the checksum but do not parse as the
    folder's examples or whose image does not decode (damaged shards are damaged_shards')."""
    spec = manifest.record_spec()
    bad = []
    for name in manifest.expected_shard_counts(split):
        path = os.path.join(manifest.folder, name)
        index = 0
        try:
            for serialized in tf.data.TFRecordDataset(path):
                try:
                    parsed = tf.io.parse_single_example(serialized, spec)
                    if "image/encoded" in parsed:
                        tf.io.decode_image(parsed["image/encoded"], expand_animations=False)
                except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
                    problem = e.message.split("}}")[-1].split("[Op:")[0].strip()
                    bad.append((path, index, problem.splitlines()[0][:100] if problem else "invalid"))
                index += 1
        except tf.errors.DataLossError:
            pass        # the rest of a damaged shard: damaged_shards reports it
    return bad


def iter_split(data_dir, split, batch_size, rows=False):
    """(encoded PNG batch, labels[, source rows]) straight from the records; a corrupt shard is
    named."""
    files = read_manifest(data_dir).split_files(split)
    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "source/row": tf.io.FixedLenFeature([], tf.int64)}
    for path in files:
        ds = tf.data.TFRecordDataset(path).map(lambda s: tf.io.parse_single_example(s, spec))
        try:
            for batch in ds.batch(batch_size):
                out = (batch["image/encoded"].numpy(), batch["label"].numpy())
                yield out + (batch["source/row"].numpy(),) if rows else out
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            raise FerTfError(f"{path}: corrupt record shard ({e.message.splitlines()[0][:120]}); "
                             "reconvert with `fer-tf records`") from None
