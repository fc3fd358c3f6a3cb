"""The live progress line: elapsed time, candidates/s, cache hits (by kind: s structure, f family,
i identity child; c counts fitted programs that converged to a function already known), islands
times population, and the front.

On a terminal the line is redrawn in place at most four times a second; elsewhere (a log, CI) a
full line is printed every ten seconds.  ``quiet`` prints nothing.
"""

from __future__ import annotations

import sys
import time


def _fmt_front(front: list[dict], limit: int = 8) -> str:
    parts = []
    for e in front[-limit:]:
        c = e.cost
        parts.append(f"{int(c) if float(c).is_integer() else c:g}:{e.error:.3g}")
    return " ".join(parts)


class Progress:
    def __init__(self, engine, quiet: bool = False, stream=None):
        self.engine = engine
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = 0.25 if self.tty else 10.0
        self.t0 = time.monotonic()
        self.n0 = engine.state.n_told
        self.last = 0.0

    def line(self) -> str:
        st = self.engine.state
        dt = max(time.monotonic() - self.t0, 1e-9)
        rate = (st.n_told - self.n0) / dt
        front = self.engine.front()
        unit = {"ulp": "ulp", "cr": "cr ratio", "faithful": "faithful ratio"}.get(self.engine.config.mode, "rel")
        h = st.hits
        return (f"[{st.elapsed:7.1f}s] cand {st.n_told} ({rate:.1f}/s) fitted {st.n_evaluated} "
                f"hit {100 * self.engine.hit_rate:.0f}% (s{h['structure']} f{h['family']} i{h['identity']} "
                f"c{h['converged']}) pop {len(st.islands)}x{self.engine.config.population_size} | best {unit} by cost: "
                f"{_fmt_front(front) or '-'}")

    def update(self, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        text = self.line()
        if self.tty:
            width = 160
            self.stream.write("\r" + text[:width].ljust(min(width, len(text) + 2)))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.quiet:
            return
        self.update(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


