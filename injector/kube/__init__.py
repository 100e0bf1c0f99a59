"""Kubernetes adapters: API access for the agent and vcl-status (real client, typed results)."""
