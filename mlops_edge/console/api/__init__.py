"""The console's JSON API under ``/api``: one module per page (executions and their input, models,
devices, the MQTT test client), each with a ``routes(...)`` list that ``create_app`` composes;
:mod:`.common` holds what they share (the JSON body, the error shape, guarded event streams)."""
