"""Operational metrics for Prometheus (`GET /metrics`): this node's counters and the deployment's queues."""

from __future__ import annotations

import bisect
from collections import Counter

from kefu.storage import Database
from kefu.storage import stats as stats_store
from kefu.storage import webhooks as webhook_store

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)


def _labels(**labels: str) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items()
    )
    return "{" + inner + "}" if inner else ""


class Telemetry:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.sockets: Counter[str] = Counter()
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_sum = 0.0
        self.messages_written = 0  # read from the message writer at scrape time

    def socket_opened(self, kind: str) -> None:
        self.sockets[kind] += 1

    def socket_closed(self, kind: str) -> None:
        self.sockets[kind] -= 1

    def observe_send(self, seconds: float) -> None:
        """Time from a `send` frame read to its `ack` queued: validation, the group commit, the fan-out."""
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.latency_sum += seconds

    async def render(self, messages_written: int, search_lag_s: float = 0.0, search_documents: int = 0) -> str:
        async with self.db.read() as tx:
            queues = await stats_store.queue_lengths(tx)
            agents = await stats_store.agents_by_status(tx)
            backlog = await webhook_store.backlog(tx)
        lines = [
            "# HELP kefu_open_sockets WebSocket connections open on this node.",
            "# TYPE kefu_open_sockets gauge",
            *(f"kefu_open_sockets{_labels(kind=k)} {self.sockets.get(k, 0)}" for k in ("visitor", "agent")),
            "# HELP kefu_messages_total Messages this node has written (rate() gives messages/s).",
            "# TYPE kefu_messages_total counter",
            f"kefu_messages_total {messages_written}",
            "# HELP kefu_queue_length Conversations waiting for an agent.",
            "# TYPE kefu_queue_length gauge",
            *(f"kefu_queue_length{_labels(app_id=a, group=g)} {n}" for (a, g), n in sorted(queues.items())),
            "# HELP kefu_agents Agents by the status they chose.",
            "# TYPE kefu_agents gauge",
            *(f"kefu_agents{_labels(app_id=a, status=s)} {n}" for (a, s), n in sorted(agents.items())),
            "# HELP kefu_send_latency_seconds From a send frame to its ack, on this node.",
            "# TYPE kefu_send_latency_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS_S, float("inf")), self.latency_counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f"kefu_send_latency_seconds_bucket{_labels(le=le)} {cumulative}")
        lines += [
            f"kefu_send_latency_seconds_sum {self.latency_sum:.6f}",
            f"kefu_send_latency_seconds_count {cumulative}",
            "# HELP kefu_webhook_backlog Webhook deliveries not yet delivered or given up.",
            "# TYPE kefu_webhook_backlog gauge",
            f"kefu_webhook_backlog {backlog}",
            "# HELP kefu_search_index_lag_seconds Seconds the oldest message this node wrote has waited for search.",
            "# TYPE kefu_search_index_lag_seconds gauge",
            f"kefu_search_index_lag_seconds {search_lag_s:.3f}",
            "# HELP kefu_search_documents_total Documents (messages, contexts) this node's search indexer stored.",
            "# TYPE kefu_search_documents_total counter",
            f"kefu_search_documents_total {search_documents}",
        ]
        return "\n".join(lines) + "\n"
