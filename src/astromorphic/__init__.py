"""Reference reproduction of "Delving Deeper Into Astromorphic Transformers".

Mia, Bal, Sengupta; arXiv 2312.10925, IEEE TCDS 2025. The library holds all the science (attention,
models, data, training, the neuron-astrocyte simulation, aggregation and plotting); the Snakemake
workflow under ``workflow/`` only orchestrates it.
"""

__version__ = "0.1.0"
