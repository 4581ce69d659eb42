"""beets plugin: genres from genrekit's audio classifier.

Enable with ``plugins: genrekit`` in beets' config.yaml. ``beet genrekit [QUERY]`` analyses the
matching items and sets their genre plus the flexible attributes ``genrekit_genre`` (the model's
label, maybe "other"), ``genrekit_confidence`` and ``genrekit_tags`` (top zero-shot tags); it
writes the files' tags when beets' ``import.write`` setting says so (``beet genrekit`` follows
the same rule as ``beet modify``). With ``auto: yes`` it runs on ``beet import`` (beets then
writes the tags itself as it imports). Options mirror ``genrekit tag``'s::

    genrekit:
      auto: no
      model: default          # or a model file from `genrekit train`
      from: ''                # a `genrekit batch` result folder to reuse
      min_confidence: 0.0     # leave items with unsure answers alone
      include_other: no       # also write "other" answers
      mode: replace           # replace | add | fill
      force: no               # also redo items genrekit did before
      names: display          # display ("Hip-Hop") | plain ("hiphop")
      names_file: ''          # your own names (JSON or 'label = name' lines)

``beet genrekit -p`` (``--pretend``) prints what would change and changes nothing;
``-f`` (``--force``) redoes items that already have ``genrekit_genre``.

beets 2.x keeps genres in the multi-valued ``genres`` field (older beets: the ``genre`` string);
the plugin sets whichever this beets has, so ``beet write`` puts them in the files.

Writes beets cannot do safely are refused: beets edits files in place and trusts their size
fields, so on a file whose container lies (a streaming WAV from ``ffmpeg -f wav pipe:``, sizes
0xFFFFFFFF) or whose ID3 frames do not add up it would insert bytes into the audio or drop frames.
While the plugin is loaded, every beets write (``beet write``, ``beet modify``, imports, this
plugin's own) first asks genrekit's check (``genrekit.library.tagging.unsafe_to_write``); a file
it refuses is left byte for byte as it is, and beets logs "error writing PATH: REASON". The
genre is still stored in the library.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

MODES = ("replace", "add", "fill")


class GenrekitPlugin(BeetsPlugin):
    item_types = {
        "genrekit_genre": types.STRING,
        "genrekit_confidence": types.FLOAT,
        "genrekit_tags": types.STRING,
    }

    def __init__(self, name: str | None = None) -> None:
        super().__init__("genrekit")
        self.config.add({
            "auto": False,
            "model": "default",
            "from": "",
            "min_confidence": 0.0,
            "include_other": False,
            "mode": "replace",
            "force": False,
            "names": "display",
            "names_file": "",
        })
        self._loader = None
        self._changed_on_import: set[int] = set()
        self.register_listener("write", self.refuse_unsafe_write)
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.import_task_files)

    # ------------------------------------------------------------------------------- beets hooks

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("genrekit", help="set genres from genrekit's audio classifier")
        cmd.parser.add_option("-p", "--pretend", action="store_true", default=False,
                              help="show what would change, change nothing")
        cmd.parser.add_option("-f", "--force", action="store_true", default=None,
                              help="also redo items genrekit did before")
        cmd.parser.add_option("-m", "--mode", choices=MODES, default=None,
                              help="replace the genre, add to the genres, or fill only empty ones")
        cmd.parser.add_option("--min-confidence", type="float", default=None,
                              help="leave items whose answer is less sure than this alone")
        cmd.parser.add_option("--include-other", action="store_true", default=None,
                              help="also write 'other' answers")
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Any, opts: Any, args: list[str]) -> None:
        items = list(lib.items(args))
        self.process(items, pretend=opts.pretend, write=ui.should_write(), force=opts.force, mode=opts.mode,
                     min_confidence=opts.min_confidence, include_other=opts.include_other, echo=True)

    def imported(self, session: Any, task: Any) -> None:
        # This stage runs before beets copies or moves the files, so nothing is written here (it
        # would change the user's source files); see import_task_files.
        try:
            changed = self.process(list(task.imported_items()), pretend=False, write=False)
        except ui.UserError as exc:  # e.g. no model weights: the import itself goes on
            self._log.error("{}", exc)
            return
        self._changed_on_import.update(item.id for item in changed)

    def import_task_files(self, session: Any, task: Any) -> None:
        """After beets placed the files: write the genres when ``import.write`` is on and beets
        will not (it writes only what the autotagger applied; ``-A`` imports are left as found)."""
        if getattr(task, "apply", False) or not ui.should_write():
            self._changed_on_import.clear()
            return
        for item in task.imported_items():
            if item.id in self._changed_on_import:
                self._write(item)
                self._changed_on_import.discard(item.id)

    def refuse_unsafe_write(self, item: Any, path: bytes, tags: Any) -> None:
        """beets' ``write`` event, sent before it opens the file: raising WriteError stops that write
        (``try_write`` logs it and goes on), so a file genrekit would not write is never touched."""
        from beets.library import WriteError

        from genrekit.library.tagging import unsafe_to_write

        why = unsafe_to_write(os.fsdecode(path))
        if why is not None:
            raise WriteError(path, f"genrekit: not written, {why}")

    def _write(self, item: Any) -> None:
        """``item.try_write()`` from inside one of this plugin's own listeners: beets sets the
        plugin's log level while a listener runs and asserts it is unset when the next one starts,
        and the ``write`` event this sends runs :meth:`refuse_unsafe_write` (ours too) nested, so
        the level is cleared around the call and put back after."""
        level = self._log.level
        self._log.setLevel(logging.NOTSET)
        try:
            item.try_write()
        finally:
            self._log.setLevel(level)

    # -------------------------------------------------------------------------------------- work

    def _option(self, value: Any, key: str, kind: type) -> Any:
        return self.config[key].get(kind) if value is None else value

    def process(self, items: list[Any], *, pretend: bool, write: bool, force: bool | None = None,
                mode: str | None = None, min_confidence: float | None = None, include_other: bool | None = None,
                echo: bool = False) -> list[Any]:
        """Analyse ``items`` and set their genres; returns the items that changed."""
        from genrekit.errors import GenrekitError
        from genrekit.library.answers import Rules, decide, iter_answers, lazy_classifier
        from genrekit.library.names import GenreNames
        from genrekit.library.tagging import new_genres

        force = bool(self._option(force, "force", bool))
        mode = self._option(mode, "mode", str)
        if mode not in MODES:
            raise ui.UserError(f"genrekit: mode must be one of {', '.join(MODES)}, not {mode!r}")
        rules = Rules(float(self._option(min_confidence, "min_confidence", float)),
                      bool(self._option(include_other, "include_other", bool)))
        try:
            names = GenreNames.from_options(self.config["names"].as_str(), self.config["names_file"].as_str() or None)
        except GenrekitError as exc:
            raise ui.UserError(f"genrekit: {exc}") from None
        say = ui.print_ if echo else (lambda text: self._log.info("{}", text))

        todo = []
        for item in items:
            old = self._genres(item)
            if item.get("genrekit_genre") and not force:
                say(f"{item}: skipped, genrekit did it before (-f redoes it)")
            elif mode == "fill" and any(g.strip() for g in old) and not item.get("genrekit_genre"):
                say(f"{item}: skipped, has a genre ({'; '.join(old)})")
            else:
                todo.append(item)
        changed: list[Any] = []
        if not todo:
            return changed
        if self._loader is None:
            self._loader = lazy_classifier(self.config["model"].as_str() or None)
        by_path = {os.fsdecode(item.path): item for item in todo}
        results_dir = self.config["from"].as_str() or None
        answers = iter_answers(list(by_path), self._loader, results_dir)
        while True:  # item by item, so an interrupted run keeps what it stored
            try:
                path, result = next(answers)
            except StopIteration:
                break
            except GenrekitError as exc:  # the model or the results folder: nothing more can be done
                raise ui.UserError(f"genrekit: {exc}") from None
            item = by_path[path]
            if isinstance(result, GenrekitError):
                self._log.error("{}", result)
                continue
            why = decide(result, rules)
            if why is not None:
                say(f"{item}: skipped, {why}")
                continue
            old = self._genres(item)
            prev = item.get("genrekit_genre")
            name = names.name(result.genre)
            genres = new_genres(tuple(old), name, mode, names.name(prev) if prev else None)
            if genres is None:
                say(f"{item}: skipped, has a genre ({'; '.join(old)})")
                continue
            say(f"{item}: {'; '.join(old) or '(none)'} -> {'; '.join(genres)} ({result.genre} {result.confidence:.2f})"
                + (" [pretend]" if pretend else ""))
            if pretend:
                continue
            self._set_genres(item, list(genres))
            item["genrekit_genre"] = result.genre
            item["genrekit_confidence"] = float(result.confidence)
            item["genrekit_tags"] = "; ".join(result.tag_names())  # AudioSet names hold commas ("Violin, fiddle")
            if write:
                self._write(item)
            item.store()
            changed.append(item)
        return changed

    @staticmethod
    def _has_genres_list(item: Any) -> bool:
        return "genres" in type(item)._fields

    def _genres(self, item: Any) -> list[str]:
        if self._has_genres_list(item):
            return [str(g) for g in (item.get("genres") or [])]
        g = item.get("genre") or ""
        return [g] if g else []

    def _set_genres(self, item: Any, genres: list[str]) -> None:
        if self._has_genres_list(item):
            item["genres"] = genres
        else:
            item["genre"] = ", ".join(genres)
