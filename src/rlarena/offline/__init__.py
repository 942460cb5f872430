"""Offline RL data: logged episodes as Parquet files with RLlib's columns (rlarena.offline.io).

pyarrow, the optional extra `rlarena[offline]`, is imported only when a file is written or read.
"""

from rlarena.offline.io import OfflineData, OfflineWriter

__all__ = ["OfflineData", "OfflineWriter"]
