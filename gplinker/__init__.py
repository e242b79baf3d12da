"""gplinker: GPLinker information extraction (NER, relation triples, events) with Efficient GlobalPointer heads."""

from gplinker.pipeline import Pipeline

__all__ = ["Pipeline"]
