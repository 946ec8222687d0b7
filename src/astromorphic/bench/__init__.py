"""Benchmarks: time and peak memory of the attention kinds against N (:mod:`astromorphic.bench.attention`),
training and evaluation speed of the task models (:mod:`astromorphic.bench.throughput`, with the plain-loop
reference of :mod:`astromorphic.bench.plain_loop`), projected device-hours (:mod:`astromorphic.bench.cost`); the
command ``astromorphic bench`` in :mod:`astromorphic.bench.command`. Nothing is imported here, so that a module
that reads one benchmark (Fig. S2 reads the attention benchmark's kinds) does not load the others."""
