"""The rule language: ``.lnx`` text to a :class:`~linnix.plan.Plan`.

The stages run in order from :mod:`.pipeline`: :mod:`.loader` (files,
includes) → :mod:`.grammar` (parse; Lark's internals are confined to
:mod:`._lark`) → :mod:`.builder` (AST of :mod:`.nodes`) → :mod:`.checker`
(with :mod:`.infer`: every diagnostic; its output is the checked form of
:mod:`.ir`) → :mod:`.optimizer` → :mod:`.compiler` (generated Python, written
by :mod:`.codegen`).  :mod:`.source` holds positions and renders diagnostics;
:mod:`.printer` turns expressions back into text.  Nothing here imports the
engine or the runtime.
"""
