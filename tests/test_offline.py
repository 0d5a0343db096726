"""No network, ever: a fresh interpreter records every socket operation, from before picotui is imported
through loading a checkpoint with a kohya LoRA and a VAE, generating, and saving the PNG.

The hub's offline switches are NOT set in that interpreter's environment (the conftest sets them for the
rest of the suite): picotui must set them itself. Python's audit hooks see every socket connect, DNS
lookup and datagram send made through Python; creating or binding a socket is allowed (urllib3 probes
IPv6 support that way), reaching another machine is not. Native code that opened its own connections
without Python (a Rust HTTP client) would not be seen here; none of the libraries involved does so when
the hub is offline, which the environment assertions below check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli_support import ROOT
from conftest import KOHYA_LORA, TINY_CHECKPOINT, TINY_VAE

SCRIPT = r'''
import ipaddress, json, socket, sys

attempts = []
NETWORK = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
           "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto", "socket.sendmsg"}

def loopback(host):
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False

def audit(event, args):
    if event not in NETWORK:
        return
    if event == "socket.connect" or event in ("socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[-1]
        if getattr(sock, "family", None) == socket.AF_UNIX or (isinstance(address, tuple) and loopback(address[0])):
            return
        attempts.append([event, repr(address)])
    else:
        if args and loopback(args[0]):
            return
        attempts.append([event, repr(args[:2])])
    raise OSError(f"network access attempted: {event} {args[:2]!r}")

sys.addaudithook(audit)  # before picotui, torch, diffusers, transformers or huggingface_hub load

import os
env_before = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
import queue
from pathlib import Path

from picotui.engine.events import Failed, Finished
from picotui.engine.request import GenerationRequest, LoraSpec
from picotui.engine.jobs.worker import Worker
from picotui.paths import Paths

models, out = Path(sys.argv[1]), Path(sys.argv[2])
events = queue.SimpleQueue()
worker = Worker(Paths(models=models, outputs=out / "outputs", config_file=out / "c.toml", state=out / "state",
                      cache=out / "cache"), events.put, device="cpu").start()
job = worker.submit(GenerationRequest(prompt="a corgi <lora:" + sys.argv[4] + ":0.6>", checkpoint=sys.argv[3],
                                      vae=sys.argv[5], sampler="DPM++ 2M SDE Karras", steps=3, width=64,
                                      height=64, seed=9))
result = {}
while True:
    event = events.get(timeout=300)
    if isinstance(event, Failed) and event.job_id in (0, job):
        result["failed"] = event.message
        break
    if isinstance(event, Finished) and event.job_id == job:
        result["path"] = str(event.path) if event.path else None
        result["save_error"] = event.save_error
        break
worker.shutdown(timeout=30)
result["attempts"] = attempts
result["env_before"] = env_before
result["env_after"] = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
result["loaded"] = sorted(m for m in ("torch", "diffusers", "transformers", "huggingface_hub", "peft")
                          if m in sys.modules)
print("RESULT " + json.dumps(result))
'''


def test_import_load_generate_and_save_open_no_network_connection(models_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                             "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(models_root), str(tmp_path), TINY_CHECKPOINT,
                           KOHYA_LORA.removesuffix(".safetensors"), TINY_VAE],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, proc.stderr[-3000:]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["attempts"] == [], result["attempts"]
    assert "failed" not in result, result["failed"]
    assert result["save_error"] is None and Path(result["path"]).is_file()
    assert result["env_before"] == {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None}  # not preset
    assert result["env_after"] == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # picotui set them
    assert {"torch", "diffusers", "transformers", "huggingface_hub", "peft"} <= set(result["loaded"])


def test_the_audit_hook_does_see_a_connection_attempt(tmp_path):
    """The detector itself works: the same hook catches a plain DNS lookup and a connect."""
    probe = SCRIPT.split("sys.addaudithook(audit)")[0] + r'''
sys.addaudithook(audit)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))  # allowed: creating and binding a socket reaches nobody
for call in (lambda: socket.getaddrinfo("huggingface.co", 443), lambda: sock.connect(("203.0.113.1", 443))):
    try:
        call()
    except OSError:
        pass
sock.close()
print("RESULT " + json.dumps(sorted(a[0] for a in attempts)))
'''
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    assert json.loads(line.removeprefix("RESULT ")) == ["socket.connect", "socket.getaddrinfo"]
