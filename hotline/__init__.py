"""hotline12348: software for a Chinese 12348 public legal service hotline."""

__version__ = "0.1.0"
