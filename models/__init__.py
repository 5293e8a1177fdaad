"""The pure core of leadroute: canonical data, simulation, scoring, policies, estimators.

Nothing in this package touches a database, a file, the network or the environment; callers
hand it frames and get typed results back.
"""
