"""Vision applications: MNIST classifiers (lecture ch. 2, 3)."""
