"""pocnet: a blockchain node with proof-of-contribution consensus and FML incentive games.

Installed, every module lives under this namespace (``pocnet.ledger``, ``pocnet.node``, ...).
In the repository the subpackages keep the top-level folders the product card names
(``ledger/``, ``node/``, ...); ``pyproject.toml`` maps them here with ``package-dir``.
"""

__version__ = "0.1.0"
