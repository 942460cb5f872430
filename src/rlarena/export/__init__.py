"""Exporting trained policies: ONNX (rlarena.export.onnx). Importing this package imports no torch."""

from rlarena.export.onnx import OnnxPolicy, export_onnx

__all__ = ["OnnxPolicy", "export_onnx"]
