"""Placeholder: replaced by the module that registers this command."""
