"""Write-then-rename helpers: nothing that looks finished exists until it is finished."""
import contextlib
import json
import os
import shutil
import tempfile

from fer_tf.core.errors import FerTfError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path, base):
    """mkstemp/mkdtemp create 0600/0700 entries; give the finished one the mode that a plain
    open()/mkdir() would have (base & ~umask), so exports and records can be shared or served."""
    os.chmod(path, base & ~_umask())


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(parent, name):
    """Remove `.NAME.partial-PID*` leftovers of runs that died (their PID is gone)."""
    if not os.path.isdir(parent):
        return
    prefix = f".{name}.partial-"
    for entry in os.listdir(parent):
        if entry.startswith(prefix):
            pid = entry[len(prefix):].split("-")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a hidden temporary directory next to `path`; on success it replaces `path`.

    On any error the temporary directory is removed and an existing `path` is left untouched.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    remove_stale_partials(parent, name)
    tmp = tempfile.mkdtemp(prefix=f".{name}.partial-{os.getpid()}-", dir=parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish_mode(tmp, 0o777)
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
        os.rename(path, os.path.join(old, name))
    os.rename(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def sibling_temp(path, suffix=".tmp"):
    """A new hidden temporary file next to `path` (same file system, so a rename publishes it)."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=parent)
    os.close(fd)
    return tmp


def publish_file(tmp, path):
    """Give a finished temporary file the usual mode and rename it over `path`."""
    _publish_mode(tmp, 0o666)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_file(path, mode="w"):
    """Open a temporary file next to `path`; rename it over `path` when the block succeeds."""
    tmp = sibling_temp(path)
    try:
        with open(tmp, mode) as f:
            yield f
        publish_file(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json(path, obj):
    with atomic_file(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path, hint):
    """A JSON file fer-tf wrote; missing or damaged: one FerTfError naming it and `hint`."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FerTfError(f"{path}: missing; {hint}") from None
    except json.JSONDecodeError as e:
        raise FerTfError(f"{path}: not valid JSON ({e}); {hint}") from None
