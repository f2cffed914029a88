"""The twin's servers: PostgreSQL + pgstac, stac-fastapi (uvicorn), the SAS stand-in, the blob server."""
