"""The checks run with torch-grader's pytest plugin: the `ctx` fixture, the markers
(`exercise`, `points`, `hidden`, `devices`, `examples`, `device_probe`), the grading
hypothesis profile and `--submission DIR`."""

pytest_plugins = ["grader.plugin"]
