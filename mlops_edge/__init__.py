"""The operator's side of mlops-edge: the ``mlops-edge`` command, the local environment, reports.

Kept apart from ``pipeline/`` (the library every Lambda runs on) as SAM CLI keeps its commands
apart from its libraries: nothing below this package imports it, and the Lambda code carries none
of it. It may import every other folder, ``local_cloud`` and ``infra`` included.
"""
