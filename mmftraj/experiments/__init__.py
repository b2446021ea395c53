"""Experiments over many runs: the grid runner (grid.py) and paired statistics (paired.py) that the
report and the studies in benchmarks/ share, the OOD / low-data report grid, the FID driver, and
the CIFAR training step the image benchmarks time (cifar_step.py).

They sit above `tasks` and `runs` (they train and load task models); metrics they use live in
`mmftraj.evaluation`, data preparation in `mmftraj.data`.
"""
