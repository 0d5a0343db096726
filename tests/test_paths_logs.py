"""The log file: under the state dir, rotating, time/level/thread on each line, never on the terminal."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest
from cli_support import ROOT

from picotui import logs
from picotui.paths import Paths

pytestmark = pytest.mark.usefixtures("restore_logger")  # setup_logging changes the process's loggers


@pytest.fixture
def paths(tmp_path) -> Paths:
    return Paths(models=tmp_path / "models", outputs=tmp_path / "outputs", config_file=tmp_path / "c.toml",
                 state=tmp_path / "state" / "deep", cache=tmp_path / "cache")


def test_setup_returns_the_state_dir_log_and_writes_records(paths):
    path = logs.setup_logging(paths)
    assert path == paths.log_file and path.parent.is_dir()

    def job():
        logging.getLogger("picotui.worker").info("job 1 finished in %.2f s", 1.5)

    thread = threading.Thread(target=job, name="picotui-worker")
    thread.start()
    thread.join()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("picotui").exception("job failed")
    text = path.read_text()
    line = next(line for line in text.splitlines() if "job 1 finished" in line)
    # time, level, thread, logger
    assert line[:4].isdigit() and " INFO " in line and "[picotui-worker]" in line and "picotui.worker" in line
    assert "ERROR" in text and "Traceback" in text and "ValueError: boom" in text


def test_calling_twice_does_not_duplicate_lines(paths):
    logs.setup_logging(paths)
    logs.setup_logging(paths)
    logging.getLogger("picotui").warning("once")
    assert paths.log_file.read_text().count("once") == 1
    assert len(logging.getLogger("picotui").handlers) == 1


def test_log_rotates(paths, monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 2000)
    logs.setup_logging(paths)
    logger = logging.getLogger("picotui")
    for i in range(200):
        logger.info("line %d %s", i, "x" * 50)
    files = sorted(p.name for p in paths.log_file.parent.iterdir())
    assert files == ["picotui.log", "picotui.log.1", "picotui.log.2", "picotui.log.3"]
    assert all(p.stat().st_size <= 2000 for p in paths.log_file.parent.iterdir())
    assert "line 199" in paths.log_file.read_text()


def test_unwritable_state_dir_does_not_stop_the_app(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    paths = Paths(models=tmp_path, outputs=tmp_path, config_file=tmp_path / "c", state=blocker / "sub",
                  cache=tmp_path)
    assert logs.setup_logging(paths) == blocker / "sub" / "picotui.log"
    logging.getLogger("picotui").error("still fine")  # goes nowhere, raises nothing


def test_nothing_reaches_the_terminal(tmp_path):
    # A fresh interpreter with a root handler on stderr (as a library's basicConfig would add):
    # picotui's records, and warnings once captured, must go only to the file.
    code = f"""
import logging, warnings
logging.basicConfig(level=logging.DEBUG)
from picotui import logs
from picotui.paths import Paths
from pathlib import Path
t = Path({str(tmp_path)!r})
p = logs.setup_logging(Paths(models=t, outputs=t, config_file=t / "c", state=t / "state", cache=t))
logs.capture_warnings()
logging.getLogger("picotui.worker").error("secret-error-line")
warnings.warn("secret-warning-line")
print(p)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "state" / "picotui.log")
    assert "secret" not in result.stderr
    text = (tmp_path / "state" / "picotui.log").read_text()
    assert "secret-error-line" in text and "secret-warning-line" in text


def test_text_that_is_not_utf8_is_logged_escaped_never_as_a_logging_error(paths, capsys):
    """A file name from a Windows zip reaches Python as 'caf\\udce9'; the line is written with an escape."""
    from picotui.engine.request import GenerationRequest, LoraSpec

    path = logs.setup_logging(paths)
    request = GenerationRequest(prompt="a corgi", checkpoint="caf\udce9.safetensors", vae="v\udce6.pt",
                                loras=(LoraSpec("styl\udce9", 0.5),), seed=1)
    as_json = request.to_json()  # must not raise either
    logging.getLogger("picotui.worker").info("job 7: %s", as_json)
    logging.getLogger("picotui.worker").warning("and a plain line after it")
    assert "Logging error" not in capsys.readouterr().err
    text = path.read_text(encoding="utf-8")  # the file stays valid UTF-8
    assert "caf\\udce9.safetensors" in text and "styl\\udce9" in text
    assert "and a plain line after it" in text
