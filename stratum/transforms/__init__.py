"""The transform stage: COLUMNS, CAST, WHERE and COMPUTE applied to a source's batches.

transformer = Transformer.build(source_schema, item.options)   # once per item
transformer.schema                                              # what the target receives
out = transformer.apply(raw_batch)                              # per batch
"""

from stratum.transforms.transformer import TransformedBatch, Transformer

__all__ = ["TransformedBatch", "Transformer"]
