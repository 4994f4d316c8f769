"""What a long command is doing, and for how long.

On a terminal, :class:`Progress` keeps one status line at the bottom,
``[synth   37 s] yosys synth_xilinx -family xcup ...``, rewritten twice a
second so that the clock runs while a tool works; each step that finishes is
kept above it with the time it ended. Without a terminal (a CI log, a pipe)
it writes nothing: the command's own report says how long it took.
"""

import shutil
import sys
import threading
import time

__all__ = ["Progress"]


class Progress:
    """A status line for the command ``command``; use it as a context manager
    and call it with each message.

    A message that ends in ``...`` is the step now running: it becomes the
    status line. Any other message is a result, kept on its own line.

    Parameters
    ----------
    command : str
        Shown in front of every line (``synth``, ``pnr``, ``prove``).
    stream : file, optional
        Where to write (default ``sys.stderr``).
    tty : bool, optional
        Whether ``stream`` is a terminal (default: ask it).
    interval : float
        Seconds between redraws of the status line.
    """

    def __init__(self, command, *, stream=None, tty=None, interval=0.5):
        self.command = command
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.started = time.monotonic()
        self._text = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    @property
    def elapsed(self):
        """Seconds since the command started."""
        return time.monotonic() - self.started

    def _line(self, text):
        width = shutil.get_terminal_size((100, 24)).columns - 1
        return f"[{self.command} {self.elapsed:4.0f} s] {text}"[:width]

    def _draw(self, kept=None):
        with self._lock:
            if kept is not None:
                self.stream.write("\r\x1b[K" + self._line(kept) + "\n")
            if self._text:
                self.stream.write("\r\x1b[K" + self._line(self._text))
            self.stream.flush()

    def __call__(self, text):
        text = text.strip()
        if not self.tty:
            return
        if text.endswith("..."):
            self._text = text
            self._draw()
        else:
            self._text = ""             # that step is over: no status until the next
            self._draw(kept=text)

    def _run(self):
        while not self._stop.wait(self.interval):
            self._draw()

    def __enter__(self):
        if self.tty:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            with self._lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
        return False
