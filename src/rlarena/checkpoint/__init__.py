"""The versioned on-disk checkpoint format (JSON + safetensors, never pickle)."""

from rlarena.checkpoint.io import (
    FORMAT_VERSION,
    METADATA_FILE,
    read_checkpoint,
    write_checkpoint,
)

__all__ = ["FORMAT_VERSION", "METADATA_FILE", "read_checkpoint", "write_checkpoint"]
