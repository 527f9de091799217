"""Sub-commands of ``e2p``: one module per command, each with ``register(subparsers)``."""
