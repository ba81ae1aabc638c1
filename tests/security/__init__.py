"""Hostile modules, files and inputs: each must leave the host running and the library intact."""
