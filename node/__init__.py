"""The peer process: chain, mempool, REST API, block production, CLI and cluster launcher."""
