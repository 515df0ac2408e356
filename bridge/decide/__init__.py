"""Deciding: the coupling policy, the findings about an environment, the checker that
judges a candidate install against it, and what this machine can run (host)."""
