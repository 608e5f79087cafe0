"""Ledger: canonical encoding, keys, transactions, blocks, the state machine and storage."""
