"""Root test configuration: the shared database fixtures come from a plugin.

See `macrostrat.dinosaur.testing` for the fixtures (``database_url``, ``db``, ...)
and the ``--teardown`` option. The plugin imports the database packages only when
a test asks for a database, so app-frame, auth and utils tests run without them.
"""

pytest_plugins = ["macrostrat.dinosaur.testing", "pytester"]
