"""Jobs that act on a cluster through the gateway's peers: drain a node, execute a rebalance.

* ``jobs`` -- a job's persisted state (planned/running/paused/done/failed/cancelled) and plan;
* ``engine`` -- running a job's plan step by step: pause, resume, progress, throttling;
* ``transfer`` -- one key moved between two peers safely (copy, verify, locked drop, logs);
* ``nodes`` -- the cluster's nodes as peers, opened from the gateway;
* ``drain``, ``rebalance`` -- the two jobs: their plans and what runs before and after.

Never imports textual or rich (the commands draw progress bars from the callbacks).
"""
