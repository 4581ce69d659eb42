"""genrekit's answers in the user's music library: genre tags written into the files themselves
(``tagging``), files sorted into genre folders (``sorting``), undo logs for both (``undo``), the
genre names people see (``names``) and where the answers come from (``answers``: a classifier run
or a ``genrekit batch`` result read by ``results``).

Everything here treats the user's files as sacred: a file is either left byte-for-byte as it was
or replaced whole by its edited copy (temp file in the same folder, fsync, rename), and every run
that changes something writes, before the change, the log that undoes it.
"""
