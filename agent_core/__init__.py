"""Jackdaw's core: the agent loop, prompts, sessions, traces, config and the CLI."""

__version__ = "0.1.0"
