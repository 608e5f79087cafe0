"""Peer-to-peer layer: signed consensus messages, HTTP gossip, block sync."""
