"""mmftraj: one-step generative modeling of trajectories and images with Modular MeanFlow."""

__version__ = "0.1.0"
