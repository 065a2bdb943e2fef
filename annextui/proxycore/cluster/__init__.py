"""Clusters (`--uuid <cluster uuid>`): `ClusterPeer` (peer.py) fans requests out to the nodes
(node.py), answers GET from one holder with failover (get.py) and streams a PUT to every
participant (put.py). See peer.py for the rules, as upstream's and where ours are better."""

from annextui.proxycore.cluster.node import Node, NodeSpec
from annextui.proxycore.cluster.peer import ClusterPeer, Preferences

__all__ = ["ClusterPeer", "Node", "NodeSpec", "Preferences"]
