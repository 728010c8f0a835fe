"""Stores: the graph and vector interfaces and their implementations."""
