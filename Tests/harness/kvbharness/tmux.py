"""A terminal program (the real `kvb-console`) in a private tmux server: keys in, screen out."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path


class Tmux:
    """A private tmux server (its own -L socket) running one shell command in a WIDTH×HEIGHT window.

    `name` and `log_path` (the program's log file, if it writes one) are for failure reports."""

    def __init__(self, command: str, width: int = 80, height: int = 24, name: str = "tmux",
                 log_path: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self.socket = f"kvbtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.target = "console"
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height), command,
                   ";", "set-option", "-t", self.target, "remain-on-exit", "on")
        try:
            self.pid = self.pane()[2]  # the program's pid, for reports
        except AssertionError:  # it exited before remain-on-exit was set
            self.pid = 0

    def _tmux(self, *args: str, check: bool = True) -> str:
        # os.environ, not the C environment: under pytest, readline has put LINES/COLUMNS there,
        # and ncurses takes those over the terminal's real size (the console would ignore resizes).
        env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def log(self) -> str:
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def keys(self, *keys: str) -> float:
        """Sends keys (tmux names: Down, Enter, Escape, or literal text); returns the monotonic time
        taken just before sending."""
        at = time.monotonic()
        self._tmux("send-keys", "-t", self.target, *keys)
        return at

    def screen(self) -> list[str]:
        return self._tmux("capture-pane", "-p", "-t", self.target).split("\n")

    def text(self) -> str:
        return "\n".join(self.screen())

    def wait_screen(self, predicate, timeout: float, what: str):
        """Polls the screen until predicate(lines) is truthy; fails showing the last screen."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            value = predicate(lines)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; screen:\n" + "\n".join(lines))
            time.sleep(0.05)

    def pane(self) -> tuple[bool, int | str | None, int]:
        """(dead, exit status or "signal N", pid) of the program's pane."""
        out = self._tmux("list-panes", "-t", self.target, "-F",
                         "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{pane_pid}").strip().split("|")
        dead = out[0] == "1"
        status: int | str | None = None
        if dead and out[1].strip():
            status = int(out[1])
        elif dead and out[2].strip():
            status = f"signal {out[2]}"
        elif dead:
            status = _zombie_exit_status(int(out[3]))
        return dead, status, int(out[3])

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))

    def size(self) -> tuple[int, int]:
        w, h = self._tmux("display-message", "-p", "-t", self.target, "#{window_width} #{window_height}").split()
        return int(w), int(h)

    def kill(self) -> None:
        """Ends the tmux server (and the program, with SIGHUP); safe to call twice."""
        socket_path = self._tmux("display-message", "-p", "#{socket_path}", check=False).strip()
        self._tmux("kill-server", check=False)
        if socket_path:
            Path(socket_path).unlink(missing_ok=True)


def _zombie_exit_status(pid: int) -> int | str | None:
    """The exit status of a process that has exited but that tmux has not reaped yet (a zombie),
    from /proc/PID/stat's exit_code field (Linux 3.5+); None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    # Field 3 is the state; exit_code is field 52, i.e. index 49 after the command name.
    if not fields or fields[0] != "Z" or len(fields) < 50:
        return None
    code = int(fields[49])
    return f"signal {code & 0x7F}" if code & 0x7F else (code >> 8) & 0xFF
