"""ssod: class-imbalanced semi-supervised object detection (CI-SSOD) as an mmdet 2.x plugin."""
__version__ = "0.1.0"
