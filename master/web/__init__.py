"""io7d's web interfaces (issue 14): the UI, the REST API, /metrics, all in one FastAPI app.

FastAPI on uvicorn, served inside io7d's own event loop (master/web/server.py): the
OpenAPI 3 document comes from the same typed routes, Starlette serves SSE and static
files, and pydantic was already a dependency. `station.Station` is io7d's handle every
router reads; `deps` holds the dependencies every route uses (login, roles)."""
