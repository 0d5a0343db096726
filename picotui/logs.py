"""The log file a user can attach to a bug report.

Everything picotui logs goes to one rotating file under the user state dir (`Paths.log_file`),
never to the terminal: while the TUI runs, a stray line on stderr would tear the screen. Each
record carries the time, level and thread name, because the worker thread and the UI thread both
write here. Jobs log their parameters, timings and any traceback through `logging.getLogger("picotui")`
(or a child such as "picotui.worker").

Text that is not valid UTF-8 (a file name from a Windows zip, kept by Python with surrogate escapes)
is written with backslash escapes: a log line never fails, and a failing line would otherwise print
"--- Logging error ---" onto the terminal.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from picotui.paths import Paths

LOGGER = "picotui"
FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"
MAX_BYTES = 2 * 1024 * 1024  # a few hundred jobs per file; small enough to attach to an issue
BACKUPS = 3

_handler: logging.Handler | None = None


def setup_logging(paths: Paths, level: int = logging.INFO) -> Path:
    """Send the "picotui" logger to the rotating log file; return its path (the UI shows it).

    Calling it again (a second app in one process, or tests) replaces the previous handler rather
    than stacking duplicates. If the state dir cannot be written, logging is switched off instead of
    failing: the app must still start, and it says where the log would have been.
    """
    global _handler
    path = paths.log_file
    logger = logging.getLogger(LOGGER)
    if _handler is not None:
        logger.removeHandler(_handler)
        logging.getLogger("py.warnings").removeHandler(_handler)
        _handler.close()
        _handler = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", errors="backslashreplace", delay=False)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    # Never bubble up to the root logger: its default handler (or a library's basicConfig) would
    # print to stderr, which is the TUI's screen.
    logger.propagate = False
    _handler = handler
    return path


def capture_warnings() -> None:
    """Route `warnings.warn` (diffusers/transformers deprecations) into the log, not the screen."""
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    if _handler is not None and _handler not in warnings_logger.handlers:
        warnings_logger.addHandler(_handler)
    warnings_logger.propagate = False
