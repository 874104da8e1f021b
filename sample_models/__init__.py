"""The bundled backdoored sample model (installed as ``ulrl_edge.sample_models``).

See MODEL_CARD.md; ``make_sample.py`` re-creates every file here from Fashion-MNIST.
"""
