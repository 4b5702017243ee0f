"""Everything in Shortfall that talks to a chain: adapters, pulling, the daemon, sinks, the CLI.

``keeper`` imports ``simulator`` for all numerics; never the reverse.
"""

from simulator import __version__

__all__ = ["__version__"]
