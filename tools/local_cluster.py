"""Start a local TensorFlow cluster of `fer-tf` processes on 127.0.0.1 and wait for it.

Each process gets a TF_CONFIG naming the whole cluster (chief, workers, parameter servers,
evaluator) on free loopback ports and its own task; the Estimator does the rest. Logs go to
--logs/TASK_INDEX.log. Parameter servers run until the chief and workers are done; the evaluator
until it has evaluated the final checkpoint (or --evaluator-timeout).

    python tools/local_cluster.py --workers 1 -- train --data records/fer2013 --model-dir runs/mw --strategy multi_worker
    python tools/local_cluster.py --workers 1 --ps 1 --evaluator -- train --data records/fer2013 --model-dir runs/ps

Ends by printing each task's exit status; exits non-zero if the chief or a worker failed.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time


def free_ports(n):
    sockets, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def cluster_spec(workers, ps):
    ports = iter(free_ports(1 + workers + ps))
    spec = {"chief": [f"127.0.0.1:{next(ports)}"]}
    if workers:
        spec["worker"] = [f"127.0.0.1:{next(ports)}" for _ in range(workers)]
    if ps:
        spec["ps"] = [f"127.0.0.1:{next(ports)}" for _ in range(ps)]
    return spec


def launch(args_for_fer_tf, workers=1, ps=0, evaluator=False, logs="cluster_logs",
           evaluator_timeout=600, timeout=900, python=sys.executable):
    """Returns (cluster spec, {(task, index): exit status | "timeout" | "stopped"}). If the chief
    or a worker fails, or they are not done within `timeout` seconds, the others are stopped:
    a broken cluster never waits forever."""
    cluster = cluster_spec(workers, ps)
    os.makedirs(logs, exist_ok=True)
    tasks = [(kind, i) for kind in ("ps", "chief", "worker") for i in range(len(cluster.get(kind, [])))]
    if evaluator:
        tasks.append(("evaluator", 0))
    procs = {}
    for kind, index in tasks:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}
        log = open(os.path.join(logs, f"{kind}_{index}.log"), "w")
        procs[(kind, index)] = subprocess.Popen([python, "-m", "fer_tf.apps.cli", *args_for_fer_tf],
                                                env=env, stdout=log, stderr=subprocess.STDOUT)
    status = {}
    trainers = [t for t in tasks if t[0] in ("chief", "worker")]
    deadline = time.time() + timeout
    while len(status) < len(trainers):
        for key in trainers:
            if key not in status and procs[key].poll() is not None:
                status[key] = procs[key].returncode
        if any(code != 0 for code in status.values()) or time.time() > deadline:
            for key in trainers:
                if key not in status:
                    procs[key].terminate()
                    procs[key].wait()
                    status[key] = "timeout" if time.time() > deadline else "stopped"
            break
        time.sleep(0.2)
    if evaluator:
        try:
            status[("evaluator", 0)] = procs[("evaluator", 0)].wait(timeout=evaluator_timeout)
        except subprocess.TimeoutExpired:
            procs[("evaluator", 0)].terminate()
            status[("evaluator", 0)] = "timeout"
    for key in [t for t in tasks if t[0] == "ps"]:
        procs[key].terminate()          # parameter servers serve until told to stop
        procs[key].wait()
        status[key] = "stopped"
    return cluster, status


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     usage="%(prog)s [options] -- FER_TF_ARGS...")
    parser.add_argument("--workers", type=int, default=1, help="workers besides the chief")
    parser.add_argument("--ps", type=int, default=0, help="parameter servers")
    parser.add_argument("--evaluator", action="store_true", help="add an evaluator task")
    parser.add_argument("--logs", default="cluster_logs")
    parser.add_argument("--evaluator-timeout", type=int, default=600)
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds the chief and workers may take before all are stopped")
    parser.add_argument("fer_tf_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    fer_tf_args = args.fer_tf_args[1:] if args.fer_tf_args[:1] == ["--"] else args.fer_tf_args
    if not fer_tf_args:
        parser.error("give the fer-tf command after --, e.g. -- train --data ... --model-dir ...")
    start = time.time()
    cluster, status = launch(fer_tf_args, args.workers, args.ps, args.evaluator, args.logs,
                             args.evaluator_timeout, args.timeout)
    print(f"cluster {json.dumps(cluster)} ran {time.time() - start:.1f}s")
    for (kind, index), code in status.items():
        print(f"  {kind}_{index}: {code}  (log: {os.path.join(args.logs, f'{kind}_{index}.log')})")
    failed = [k for k, c in status.items() if k[0] in ("chief", "worker") and c != 0]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
