"""Fan-out between connections and nodes, behind one interface (`memory` for one node, `redis` for many)."""

from kefu.pubsub.base import Handler, PubSub, Subscription
from kefu.pubsub.memory import MemoryPubSub

__all__ = ["Handler", "MemoryPubSub", "PubSub", "Subscription"]
