"""The Airflow 3 UI plugin: a "Browser sessions" view in the Airflow UI, served by the API server."""
