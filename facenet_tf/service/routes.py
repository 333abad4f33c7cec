"""The HTTP routes: ``/health``, the ``/v1`` API and the web page.

Uploads are read into memory and decoded by the project's reader
(:func:`facenet_tf.data.reader.decode`, with the pixel limit of ``--max-pixels``); no part of
a request (file name, field, person's name) becomes a path or a command. The model and the
gallery are reached only through the worker thread (``app.state.batcher``).
"""

from typing import List, Optional, Tuple

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from facenet_tf.data.reader import decode


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Enrolled(BaseModel):
    name: str
    enrolled: int = Field(description="photos added to the gallery")


class Face(BaseModel):
    box: Tuple[float, float, float, float] = Field(description="left, top, right, bottom in pixels of the photo")
    name: Optional[str] = Field(description="the enrolled person, or null (unknown)")
    distance: Optional[float] = Field(description="to the nearest gallery entry; null for an empty gallery")


class Identified(BaseModel):
    faces: List[Face] = Field(description="every face found, best detection first")


class Verified(BaseModel):
    same: bool
    distance: float


class Person(BaseModel):
    name: str
    images: int


class People(BaseModel):
    people: List[Person]


class Removed(BaseModel):
    name: str
    removed: int = Field(description="gallery entries removed")


class Problem(BaseModel):
    error: str = Field(description="one line saying what is wrong")


ERRORS = {status: {"model": Problem} for status in (400, 401, 404, 413, 422)}


async def read_photo(request: Request, upload: UploadFile, what: str):
    """uint8 ``[H, W, 3]`` pixels of an upload, decoded in a thread (the event loop keeps serving)."""
    data = await upload.read()
    return (await run_in_threadpool(decode, data, what, request.app.state.config.limits)).pixels


async def run_job(request: Request, kind: str, payload):
    return await request.app.state.batcher.submit(kind, payload)


def api_router(dependencies) -> APIRouter:
    """The ``/v1`` endpoints, each behind ``dependencies`` (the token check)."""
    router = APIRouter(prefix="/v1", dependencies=dependencies, responses=ERRORS)

    @router.post("/enroll", response_model=Enrolled, summary="Enrol a person from one or more photos")
    async def enroll(request: Request, name: str = Form(...), image: List[UploadFile] = File(...)):
        photos = [await read_photo(request, f, f"image {i + 1} of {len(image)}") for i, f in enumerate(image)]
        return Enrolled(name=name, enrolled=await run_job(request, "enroll", (name, photos)))

    @router.post("/identify", response_model=Identified, summary="Name every face of a photo")
    async def identify(request: Request, image: UploadFile = File(...)):
        matches = await run_job(request, "identify", await read_photo(request, image, "image"))
        return Identified(faces=[Face(box=tuple(float(v) for v in m.face.box), name=m.name,
                                      distance=None if m.distance is None else float(m.distance)) for m in matches])

    @router.post("/verify", response_model=Verified, summary="Whether two photos show the same person")
    async def verify(request: Request, image_a: UploadFile = File(...), image_b: UploadFile = File(...)):
        pair = (await read_photo(request, image_a, "image_a"), await read_photo(request, image_b, "image_b"))
        answer = await run_job(request, "verify", pair)
        return Verified(same=bool(answer.same), distance=float(answer.distance))

    @router.get("/people", response_model=People, summary="Who is enrolled, with their number of photos")
    async def people(request: Request):
        return People(people=[Person(name=n, images=k) for n, k in await run_job(request, "people", None)])

    @router.delete("/people/{name:path}", response_model=Removed, summary="Remove every photo of a person")
    async def remove(request: Request, name: str):
        return Removed(name=name, removed=await run_job(request, "remove", name))

    return router


def page_router(page: str, script: str) -> APIRouter:
    """``GET /health``, ``GET /`` (the web page: ``page``, its HTML) and ``GET /app.js`` (its ``script``)."""
    router = APIRouter()

    @router.get("/health", response_model=Health, summary="Whether the service is up")
    async def health():
        return Health(status="ok")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY})

    @router.get("/app.js", include_in_schema=False)
    async def page_script():
        return Response(script, media_type="text/javascript")

    return router


#: The page runs only its own script and shows only local images and the camera.
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")


def use(dependency):
    """``[Depends(dependency)]`` for :func:`api_router`."""
    return [Depends(dependency)]
