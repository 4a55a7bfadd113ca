"""Fan-out between connections and nodes, behind one interface (`memory` for one node, `redis` for many)."""

from kefu.pubsub.base import Handler, PubSub, Subscription
from kefu.pubsub.memory import MemoryPubSub
from kefu.pubsub.redis import RedisPubSub

__all__ = ["Handler", "MemoryPubSub", "PubSub", "RedisPubSub", "Subscription"]
