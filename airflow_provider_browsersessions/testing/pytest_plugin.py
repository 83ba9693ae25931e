"""pytest plugin: fixtures that start the embedded emulator and wire Airflow connections to it."""
