"""Experiments over many runs: the OOD / low-data report grid and the FID driver.

They sit above `tasks` and `runs` (they train and load task models); metrics they use live in
`mmftraj.evaluation`, data preparation in `mmftraj.data`.
"""
