"""ssh connections served by the long-running `annextui p2phttp` through a thin relay.

client.py is `annextui-relay` (stdlib only, standalone); header.py parses what it sends;
listener.py opens the server's unix socket; session.py serves one relayed connection with the
shell's own code (proxycore/shell.py decides every restriction).
"""
