"""The node agent: registers injected pods with the node's VPP (observe, plan, apply)."""
