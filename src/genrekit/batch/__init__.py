"""``genrekit batch``: whole libraries to a resumable Parquet dataset, on this machine or a Ray cluster.

The pieces, one concern each:

- :mod:`.sources`: what the user named (files, folders, ``@list.txt``, a CSV/Parquet with a path
  column) as one de-duplicated list of inputs, each with its resume key (path, size, mtime).
- :mod:`.rows`: the row schema and the per-input work function (:class:`WorkerSpec` builds it
  in each worker, so the model is loaded once per process/actor); both engines call exactly it.
- :mod:`.writer`: the dataset folder: a lock, the resume index, rows committed in Parquet parts by
  atomic rename, and the run record ``_genrekit_run.json``.
- :mod:`.engines`: ``local`` (worker processes) and ``ray`` (Ray Data actor pool) behind one
  ``rows(spec, tasks) -> Iterator[row]`` interface.
- :mod:`.progress`, :mod:`.report`: the live line and summary; genre counts and a bar chart.
"""
