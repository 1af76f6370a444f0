"""`fer-tf serve` as a child process, for tests and benches (yours too): start it on free
loopback ports, wait for its start-up line, read the ports from it, stop it with SIGTERM."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

STARTED = re.compile(r"REST http://(?P<host>[^ ]+):(?P<port>\d+)/(?: and gRPC [^ ]+:(?P<grpc>\d+))?")


class ServerProcess:
    def __init__(self, *flags, timeout=180, env=None):
        command = [sys.executable, "-m", "fer_tf.apps.cli", "serve", "--port", "0", *map(str, flags)]
        if "--no-grpc" not in flags and "--grpc-port" not in flags:
            command += ["--grpc-port", "0"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
        self.lines = []
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._started.wait(timeout) or self.process.poll() is not None and not self.url:
            self.stop()
            raise RuntimeError("fer-tf serve did not start: " + "".join(self.lines)[-2000:])

    url = grpc_target = None

    def _read(self):
        for line in self.process.stdout:       # stderr and stdout (the access log)
            self.lines.append(line)
            match = STARTED.search(line)
            if match and not self._started.is_set():
                self.url = f"http://{match['host']}:{match['port']}"
                if match["grpc"]:
                    self.grpc_target = f"{match['host']}:{match['grpc']}"
                self._started.set()
            elif "error" in line and not self._started.is_set():
                self._started.set()
        self._started.set()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """-> the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._reader.join(5)

    def rss_mb(self):
        """Resident memory of the server process, from /proc."""
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.process.poll()
