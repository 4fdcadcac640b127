"""Isolation: hardened SQL engine workers and a process sandbox for code."""
