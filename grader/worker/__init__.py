"""Everything that runs next to student code, and nothing else.

This sub-package is copied whole into each worker's private runtime folder (the only `grader`
a worker can import) and imports nothing from the rest of `grader`: no check, no solution, no
pack can reach a process that runs a submission. The judge imports its data types and encoders
(`wire`, `codec`) to read what comes back, and `isolation` to report the layers.

    server.py     answers the judge's requests: import a part, call a name, report the result
    zygote.py     imports torch once and forks one worker per submission
    isolation.py  the sandbox layers a worker applies to itself before any student code
    wire.py       the plain-data types that cross the pipe
    codec.py      tensors and values to and from plain data
    fixtures.py   trusted helpers built on both sides (models, optimizers, loaders)
"""
