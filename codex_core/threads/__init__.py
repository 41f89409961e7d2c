"""Threads: conversations with the agent, their settings and their subscribers."""
