"""Strategic Intelligence Stack: customer segmentation and decision intelligence."""

__version__ = "0.1.0"
