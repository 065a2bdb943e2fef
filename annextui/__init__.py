"""annextui: console and gateway for git-annex proxies and clusters."""

__version__ = "0.1.0"
