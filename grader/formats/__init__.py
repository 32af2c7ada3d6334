"""The output formats: every renderer takes the same `grader.results` objects.

    terminal.py    the table and failure details `grader check` prints
    report.py      HTML reports (Jinja2, `templates/`)
    outputs.py     writing a class's files (results.json, CSVs, reports)
    gradebook.py   Canvas and Moodle CSVs
    junit.py       JUnit XML
    gradescope.py  Gradescope's results.json and its autograder zip
    github.py      GitHub Classroom / Actions: points line, annotations, job summary
"""
