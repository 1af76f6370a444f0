"""Data: dataset readers (fer2013, genki4k, ibug300w), the record format (records), the
converters that write record folders (convert) and the one decode/augment path (preprocess)."""
