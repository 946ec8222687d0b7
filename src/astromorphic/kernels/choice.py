"""How a user chooses the causal kernel: the environment variable and its values (read by the dispatch in
``astromorphic.kernels`` and named in the kernels' error messages)."""

ENV_VAR = "ASTROMORPHIC_CAUSAL_KERNEL"
CHOICES = ("auto", "torch", "cpp", "triton")
