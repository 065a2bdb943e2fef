"""The P2P protocol over HTTP (`git annex p2phttp`'s API v0-v4), served by `annextui p2phttp`.

* `values.py`    the `[base64]` value encoding of keys, UUIDs and file names;
* `routes.py`    a request line -> `ApiRequest` (target UUID, version, endpoint, parameters),
                 or the 400 git-annex answers; pure;
* `auth.py`      the permission matrix of `--authenv*`, `--unauth-*`, `--wideopen`; pure;
* `endpoints.py` one request run against a `Peer` (the same Peers as the ssh gateway's);
* `locks.py`     content locks held between `lockcontent` and the end of `keeplocked`;
* `repos.py`     which repository (and which of its proxied remotes or clusters) serves a UUID;
* `server.py`    sockets, TLS, h11, the bounded pools, logging and shutdown (thin adapter).
"""
