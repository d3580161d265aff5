"""Data: IDX files, MNIST and Fashion-MNIST (found locally or downloaded), the 5,000 MNIST digits embedded
in the package (``mnist-5k/``), and pictures of digits prepared the way MNIST was made."""
from .datasets import (Dataset, DatasetNotFoundError, load, load_directory, load_fashion_mnist, load_mnist,
                       load_sample, read_idx)
from .images import load_digits, mnist_style, read_image, write_png

__all__ = ["Dataset", "DatasetNotFoundError", "read_idx", "load_directory", "load_mnist", "load_fashion_mnist",
           "load_sample", "load", "read_image", "write_png", "mnist_style", "load_digits"]
