"""Request-rate loads: wrk (GET) and hload.py (HEAD), with server and client CPU.

Server CPU is the utime+stime of the server's process tree from /proc, read just
before and after the load; client CPU is the load generator's rusage.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from servers import HOST, BenchError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from servers import RunningServer

_HLOAD = Path(__file__).resolve().parent / "hload.py"

# Requests are formatted once per wrk thread in init(), then cycled.
_WRK_SCRIPT = """\
local paths = {{
{paths}
}}
local headers = {{
{headers}
}}
local requests = {{}}
local index = 0

function init(args)
  for i, path in ipairs(paths) do
    local h = {{}}
    for k, v in pairs(headers) do h[k] = v end
    requests[i] = wrk.format("{method}", path, h)
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, requests)
  io.write(string.format(
    '\\nBENCH_JSON {{"requests": %d, "duration_us": %d, "p50_us": %d, ' ..
    '"p99_us": %d, "status": %d, "errors": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout))
end
"""


@dataclass(frozen=True, slots=True)
class RequestSample:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int  # 4xx/5xx answers
    errors: int  # socket errors and time-outs
    server_cpu_s: float
    client_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_us_per_request(self) -> float:
        return self.server_cpu_s * 1e6 / self.requests if self.requests else 0.0

    @property
    def client_us_per_request(self) -> float:
        return self.client_cpu_s * 1e6 / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, float]:
        data: dict[str, float] = asdict(self)
        data |= {
            "rps": self.rps,
            "server_us_per_request": self.server_us_per_request,
            "client_us_per_request": self.client_us_per_request,
        }
        return data


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(method: str, paths: Sequence[str], headers: Mapping[str, str]) -> str:
    return _WRK_SCRIPT.format(
        method=method,
        paths=",\n".join(f"  {_lua_string(path)}" for path in paths),
        headers=",\n".join(
            f"  [{_lua_string(name)}] = {_lua_string(value)}"
            for name, value in headers.items()
        ),
    )


def run_load(
    server: RunningServer,
    *,
    tool: str,
    method: str,
    paths: Sequence[str],
    headers: Mapping[str, str],
    connections: int,
    duration: int,
    scratch: Path,
) -> RequestSample:
    """Run one closed-loop load against ``server`` and measure it."""
    if tool == "wrk":
        script = scratch / f"load-{method.lower()}.lua"
        script.write_text(wrk_script(method, paths, headers))
        argv = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            server.base_url + "/",
        ]
    elif tool == "hload":
        paths_file = scratch / "hload-paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        argv = [
            sys.executable,
            str(_HLOAD),
            "--host",
            HOST,
            "--port",
            str(server.port),
            "--method",
            method,
            "--paths-file",
            str(paths_file),
            "-c",
            str(connections),
            "-d",
            str(duration),
        ]
        argv += [arg for k, v in headers.items() for arg in ("--header", f"{k}: {v}")]
    else:
        raise BenchError(f"unknown load tool {tool}")
    client_before = _children_cpu()
    server_before = server.cpu_seconds()
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=duration + 60
    )
    server_cpu = server.cpu_seconds() - server_before
    client_cpu = _children_cpu() - client_before
    if out.returncode != 0:
        raise BenchError(f"{tool} failed ({out.returncode}): {out.stderr[-2000:]}")
    summary = _parse_summary(out.stdout, tool)
    if not summary["requests"]:
        raise BenchError(
            f"{tool} completed no request on {server.label}: {out.stderr[-2000:]}"
        )
    return RequestSample(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
        failed=summary["status"],
        errors=summary["errors"] + summary["timeout"],
        server_cpu_s=server_cpu,
        # hload measures itself, leaving out the interpreter's start-up.
        client_cpu_s=summary["cpu_us"] / 1e6 if "cpu_us" in summary else client_cpu,
    )


def _parse_summary(stdout: str, tool: str) -> dict[str, int]:
    marker = "BENCH_JSON " if tool == "wrk" else ""
    for line in reversed(stdout.splitlines()):
        if line.startswith(marker) and line.rstrip().endswith("}"):
            data: dict[str, int] = json.loads(line.removeprefix(marker))
            return data
    raise BenchError(f"no summary in {tool} output:\n{stdout[-2000:]}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
