"""The ML core: demo data, training runs, XGBoost -> ONNX export with parity proof, metrics.

Heavy libraries (xgboost, onnxmltools, scikit-learn) are imported by the submodules that need
them, so importing this package is cheap.
"""

__all__ = ["data", "datasets", "demo", "exceptions", "export", "metrics", "training"]
