from setuptools import find_packages, setup

setup(
    name="ssod",
    version="0.1.0",
    description="Gradient-based sampling for class-imbalanced semi-supervised object detection",
    packages=find_packages(include=["ssod", "ssod.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "mmcv-full==1.7.2",
        "mmdet==2.28.2",
        "numpy>=1.24,<3",
        "pycocotools>=2.0.7,<3",
        "lvis==0.5.3",
        "faster-coco-eval>=1.6,<2",
    ],
)
