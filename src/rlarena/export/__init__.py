"""Exporting trained policies: ONNX (rlarena.export.onnx). Importing this package imports no torch."""

from rlarena.export.onnx import OnnxPolicy, RecurrentOnnxPolicy, export_onnx

__all__ = ["OnnxPolicy", "RecurrentOnnxPolicy", "export_onnx"]
