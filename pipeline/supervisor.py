"""Keep a process running, as systemd's `Restart=always` or supervisord would.

`python -m pipeline.supervisor --name worker --run-dir .local/run -- dramatiq pipeline.worker`
starts the command in a process group of its own and starts it again whenever it exits
(Dramatiq's main process exits as soon as one of its worker processes dies), waiting
1, 2, 4 ... up to `--max-backoff` seconds between quick successive failures; a child
that ran for `--stable-after` seconds resets the wait. SIGTERM or SIGINT stops the
child (TERM to its group, KILL after `--grace` seconds) and then the supervisor.

`<run-dir>/<name>.supervisor.json` says what is going on (`make status` prints it):
the child's pid, how many times it was restarted, its last exit status and when.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType


@dataclass
class SupervisorState:
    """What the status file holds."""

    name: str
    supervisor_pid: int
    child_pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    last_exit_at: str | None = None
    started_at: str | None = None
    state: str = "starting"


def status_path(run_dir: Path, name: str) -> Path:
    """Where the supervisor of `name` writes its state."""
    return run_dir / f"{name}.supervisor.json"


def read_state(run_dir: Path, name: str) -> SupervisorState | None:
    """The last state the supervisor of `name` wrote, if any."""
    try:
        return SupervisorState(**json.loads(status_path(run_dir, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Supervisor:
    """Run one command forever, restarting it with backoff, until told to stop."""

    def __init__(
        self,
        command: list[str],
        *,
        name: str,
        run_dir: Path,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
        grace: float = 8.0,
    ) -> None:
        self.command = command
        self.run_dir = run_dir
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.grace = grace
        self.state = SupervisorState(name=name, supervisor_pid=os.getpid())
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def _write(self) -> None:
        path = status_path(self.run_dir, self.state.name)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self.state)))
        partial.replace(path)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            _signal_group(self.child.pid, signal.SIGTERM)

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; the exit status is 0 then."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        backoff = 1.0
        while not self.stopping:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command, start_new_session=True)
            self.state.child_pid = self.child.pid
            self.state.started_at = _now()
            self.state.state = "running"
            self._write()
            code = self._wait()
            # Whatever the child left behind in its group (a Dramatiq worker process
            # outliving its parent) would hold messages: end it before starting again.
            _signal_group(self.child.pid, signal.SIGKILL)
            self.state.last_exit, self.state.last_exit_at = code, _now()
            self.state.child_pid = None
            if self.stopping:
                break
            ran = time.monotonic() - started
            backoff = 1.0 if ran >= self.stable_after else backoff
            self.state.state = f"restarting in {backoff:g} s"
            self._write()
            print(
                f"supervisor: {self.state.name} exited with {code} after {ran:.1f} s; "
                f"restarting in {backoff:g} s",
                file=sys.stderr,
                flush=True,
            )
            self._sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
            if not self.stopping:
                self.state.restarts += 1
        self.state.state, self.state.child_pid = "stopped", None
        self._write()
        return 0

    def _wait(self) -> int:
        assert self.child is not None
        while True:
            try:
                code = self.child.wait(timeout=0.5)
                return code
            except subprocess.TimeoutExpired:
                if self.stopping:
                    return self._wait_stopping()

    def _wait_stopping(self) -> int:
        assert self.child is not None
        try:
            return self.child.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            _signal_group(self.child.pid, signal.SIGKILL)
            return self.child.wait()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def main(argv: list[str] | None = None) -> int:
    """The command line: options, `--`, then the command to keep running."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.supervisor")
    parser.add_argument("--name", required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--max-backoff", type=float, default=30.0)
    parser.add_argument("--stable-after", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=8.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise")
    supervisor = Supervisor(
        command,
        name=args.name,
        run_dir=args.run_dir,
        max_backoff=args.max_backoff,
        stable_after=args.stable_after,
        grace=args.grace,
    )
    return supervisor.run()


if __name__ == "__main__":
    raise SystemExit(main())
