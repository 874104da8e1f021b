"""The ``ulrl-edge`` command line (installed as ``ulrl_edge.cli``)."""
