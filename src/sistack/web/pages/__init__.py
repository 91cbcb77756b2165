"""The web pages, one module per group of pages."""
