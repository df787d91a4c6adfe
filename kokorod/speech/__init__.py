"""The one speech pipeline: text segment → plan → rendered chunk → timeline.

Synchronous and sans-I/O. The daemon's session, ``kokorod say`` and
``kokorod pipe`` (in-process or through a daemon) all run these same steps, so
pauses, warnings, lexicons and seams are the same everywhere:

- ``chunk``: a rendered piece of speech (``SpeechChunk``) and its ``Word``s;
- ``backend``: the typed contract of what the pipeline needs from a synthesizer;
- ``synthesizer``: the real one (G2P, model-sized pieces, engine runs, words);
- ``plan``: one segment as "warn / synthesize / pause" steps;
- ``render``: a segment's audio with its edges shaped (``seams``);
- ``timeline``: chunks and pauses placed on one timeline in integer samples;
- ``local``: the whole pipeline in-process, for the command line.

Nothing is imported here, so importing one module never loads the others.
"""
