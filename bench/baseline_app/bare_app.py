"""The cold-start baseline: a bare FastAPI app behind Mangum, with one route."""

from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    """Answer with a constant body."""
    return {"message": "hello"}


handler = Mangum(app, lifespan="off")
