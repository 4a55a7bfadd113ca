"""Fan-out between connections and nodes, behind one interface (`memory` for one node, `redis` for many)."""

from kefu.pubsub.base import Event, Handler, PubSub, Subscription
from kefu.pubsub.memory import MemoryPubSub
from kefu.pubsub.redis import RedisPubSub

__all__ = ["Event", "Handler", "MemoryPubSub", "PubSub", "RedisPubSub", "Subscription"]
