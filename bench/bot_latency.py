"""The bot over HTTP on one core: answer latency with 1,000 articles, memory, and how soon the first answer comes.

    .venv/bin/python bench/bot_latency.py [--articles 1000] [--questions 2000] [--server-core 0] [--client-core 1]

Starts `kefu serve` pinned to `--server-core` on a fresh SQLite database, imports `--articles` articles through
`POST /api/v1/kb/import` (the 60 articles of tests/data, then variants with other ids and reworded phrasings: about
21 phrasings an article) and asks `POST /api/v1/bot/ask` one question at a time from a client pinned to
`--client-core`. It measures:
- the first answer right after the import (the previous index answers while the new one is built), and how long
  the build takes;
- p50/p90/p99/max of `POST /bot/ask` over `--questions` questions (the evaluation questions of tests/data);
- the server's resident memory: after start (models loaded), and after the index is built;
- a restart: the time until `/readyz` answers 200 (models loaded, the app indexed from stored vectors) and the
  first answer after it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kefu.bot.articles import parse_articles  # noqa: E402

DATA = ROOT / "tests" / "data"
PREFIXES = ("", "请问", "想问下", "你好,", "麻烦问一下", "hi,", "咨询一下", "我想知道")
SUFFIXES = ("", "?", "呢", "啊", "谢谢", "急", "(第二家店)", "-会员专区")
KEFU = str(Path(sys.executable).parent / "kefu")


def knowledge_base(n: int) -> list[dict[str, Any]]:
    base = []
    for name in ("kb_shop.json", "kb_bank.csv", "kb_saas.json"):
        base += parse_articles((DATA / name).read_bytes(), name)
    articles = []
    for i in range(n):
        a = base[i % len(base)]
        k = i // len(base)
        pre, suf = PREFIXES[k % len(PREFIXES)], SUFFIXES[(k // len(PREFIXES)) % len(SUFFIXES)] + (str(k) if k else "")
        articles.append(
            {
                "id": f"{a.article_id}-{i}",
                "question": pre + a.question + suf,
                "similar": [pre + s + suf for s in a.similar],
                "answer": a.answer + suf,
                "category": a.category,
            }
        )
    return articles


def questions() -> list[str]:
    return [
        json.loads(line)["question"]
        for name in ("eval_shop.jsonl", "eval_bank.jsonl", "eval_saas.jsonl")
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve(core: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = ["taskset", "-c", core, KEFU, "serve", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr)


def wait_ready(http: httpx.Client, base: str, process: subprocess.Popen[bytes], limit_s: float = 300) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if process.poll() is not None:
            raise SystemExit(f"kefu serve exited with {process.returncode}")
        try:
            if http.get(f"{base}/readyz").status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit("kefu serve did not get ready")


def ask(http: httpx.Client, base: str, token: str, question: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = http.post(f"{base}/api/v1/bot/ask", json={"question": question}, headers={"Authorization": token})
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {int(args.client_core)})
    asked = questions()
    with tempfile.TemporaryDirectory() as folder:
        env = os.environ | {"KEFU_DB": f"sqlite:///{folder}/bench.db", "KEFU_RATE_LIMITS": "off"}
        created = subprocess.run(
            [KEFU, "app", "create", "bench", "--admin-email", "a@bench.test", "--admin-password", "bench-password"],
            env=env,
            capture_output=True,
            check=True,
        )
        app = orjson.loads(created.stdout)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        result: dict[str, Any] = {"articles": args.articles, "questions": args.questions}
        process = serve(args.server_core, port, env)
        with httpx.Client(trust_env=False, timeout=120) as http:
            try:
                result["start_to_ready_s"] = round(wait_ready(http, base, process), 2)
                result["rss_after_start_mib"] = round(rss_mib(process.pid))
                login = http.post(
                    f"{base}/api/v1/auth/login",
                    json={"app_id": app["app_id"], "email": "a@bench.test", "password": "bench-password"},
                )
                token = "Bearer " + login.json()["token"]
                started = time.perf_counter()
                imported = http.post(
                    f"{base}/api/v1/kb/import", json=knowledge_base(args.articles), headers={"Authorization": token}
                )
                imported.raise_for_status()
                result["import_s"] = round(time.perf_counter() - started, 2)
                first_ms, first = ask(http, base, token, asked[0])
                result["first_answer_after_import_ms"] = round(first_ms, 1)
                result["first_answer_after_import_handed_off"] = first["handoff"] and first["article_id"] is None
                while ask(http, base, token, "退货政策是什么?")[1]["article_id"] is None:  # the new index is in
                    time.sleep(0.2)
                result["index_ready_after_import_s"] = round(time.perf_counter() - started, 1)
                result["rss_after_index_mib"] = round(rss_mib(process.pid))
                for q in asked[:50]:
                    ask(http, base, token, q)
                timings = [ask(http, base, token, asked[i % len(asked)])[0] for i in range(args.questions)]
                result |= {
                    "p50_ms": round(statistics.median(timings), 2),
                    "p90_ms": percentile(timings, 0.9),
                    "p99_ms": percentile(timings, 0.99),
                    "max_ms": round(max(timings), 2),
                    "rss_peak_mib": round(rss_mib(process.pid)),
                }
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
            process = serve(args.server_core, port, env)
            try:
                result["restart_to_ready_s"] = round(wait_ready(http, base, process), 2)
                first_ms, first = ask(http, base, token, asked[1])
                result["first_answer_after_restart_ms"] = round(first_ms, 1)
                result["first_answer_after_restart_from_the_index"] = first["confidence"] > 0
                result["rss_after_restart_mib"] = round(rss_mib(process.pid))
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--client-core", default="1")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
