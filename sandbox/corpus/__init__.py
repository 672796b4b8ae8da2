"""The bundled corpus: generated children's stories, and their form as plain files.

Owns the story generator (`stories`: the same text from the same seed on every machine),
its word lists (`words`) and the plain-file form that experiments train from (`files`:
what ``sandbox corpus --out DIR`` writes and how to read it back). Standard library only:
it imports nothing else of the sandbox, so every layer may use it.
"""
