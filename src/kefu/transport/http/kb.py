"""Knowledge base (`/kb/articles`, `/kb/import`, `/kb/gaps`) and `POST /bot/ask`: admins, always the caller's app."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from kefu import errors
from kefu.bot.articles import (
    MAX_FILE_BYTES,
    MAX_QUESTION_CHARS,
    ArticleInput,
    ImportTooLarge,
    InvalidArticle,
    InvalidImport,
    article_from,
    parse_article_list,
    parse_articles,
)
from kefu.domain.clock import parse_window
from kefu.services.gaps import MAX_GROUPS
from kefu.services.kb import article_record
from kefu.transport.http.body_limit import allow_body
from kefu.transport.http.deps import Admin, Curator, ServicesDep
from kefu.transport.http.errors import error_responses

router = APIRouter(tags=["knowledge base"], responses=error_responses(400, 401, 403, 422))


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=200, description="external key; required for POST")
    question: str = Field(min_length=1, max_length=1000)
    similar: list[str] = Field(default_factory=list, max_length=200)
    answer: str = Field(min_length=1, max_length=10_000)
    category: str = Field(default="", max_length=100)


class ArticleOut(BaseModel):
    id: str
    question: str
    similar: list[str]
    answer: str
    category: str
    created_at: str = Field(description="ISO-8601 UTC, e.g. 2023-08-01T14:30:00.000Z")
    updated_at: str


class ArticlePageOut(BaseModel):
    items: list[ArticleOut]
    next_cursor: str | None


class ImportOut(BaseModel):
    created: int
    updated: int


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=5000)


class AskOut(BaseModel):
    answer: str | None
    article_id: str | None
    confidence: float
    handoff: bool


class SimilarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="a visitor's wording; refused when it is already a phrasing of an article once normalised",
    )


class WordingOut(BaseModel):
    question: str = Field(description="a wording as the visitor first typed it")
    count: int = Field(description="the group's conversations that asked it so (normalised)")


class GapOut(BaseModel):
    question: str = Field(description="one of the group's own wordings (its most frequent)")
    count: int = Field(description="the group's conversations (= len(session_ids))")
    session_ids: list[str] = Field(description="oldest question first")
    article_id: str | None = Field(description="the closest article now, or null")
    confidence: float | None = Field(description="the bot's confidence in that article now, or null")
    wordings: list[WordingOut] = Field(description="the group's wordings, most frequent first (`question` first)")


class GapsOut(BaseModel):
    items: list[GapOut] = Field(description="largest group first")


def _validated(body: ArticleIn, article_id: str) -> ArticleInput:
    fields = body.model_dump() | {"id": article_id}
    try:
        return article_from(fields)
    except ValueError as exc:
        raise InvalidArticle(str(exc)) from None


@router.get("/kb/articles", response_model=ArticlePageOut)
async def list_articles(
    actor: Admin,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> ArticlePageOut:
    page = await svc.kb.list_articles(actor.app_id, limit, cursor)
    return ArticlePageOut(items=[ArticleOut(**article_record(a)) for a in page.items], next_cursor=page.next_cursor)


@router.post("/kb/articles", response_model=ArticleOut, status_code=201, responses=error_responses(409))
async def create_article(body: ArticleIn, actor: Admin, svc: ServicesDep) -> ArticleOut:
    if body.id is None:
        raise InvalidArticle("'id' is missing: every article has an external id.")
    created = await svc.kb.create_article(actor.app_id, _validated(body, body.id))
    return ArticleOut(**article_record(created))


@router.get("/kb/articles/{article_id}", response_model=ArticleOut, responses=error_responses(404))
async def get_article(article_id: str, actor: Admin, svc: ServicesDep) -> ArticleOut:
    return ArticleOut(**article_record(await svc.kb.get_article(actor.app_id, article_id)))


@router.put("/kb/articles/{article_id}", response_model=ArticleOut, responses=error_responses(404))
async def replace_article(article_id: str, body: ArticleIn, actor: Admin, svc: ServicesDep) -> ArticleOut:
    if body.id is not None and body.id != article_id:
        raise InvalidArticle("The body's 'id' differs from the one in the path; an article's id cannot change.")
    replaced = await svc.kb.replace_article(actor.app_id, _validated(body, article_id))
    return ArticleOut(**article_record(replaced))


@router.delete("/kb/articles/{article_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_article(article_id: str, actor: Admin, svc: ServicesDep) -> Response:
    await svc.kb.delete_article(actor.app_id, article_id)
    return Response(status_code=204)


async def _import_body(request: Request) -> list[ArticleInput]:
    """The articles of a multipart `file` upload (JSON or CSV) or of a JSON list body."""
    content_type = request.headers.get("content-type", "").lower()
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_FILE_BYTES + 64 * 1024:
        raise ImportTooLarge(f"The import is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it.")
    allow_body(request, MAX_FILE_BYTES + 64 * 1024)
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidImport("Send the knowledge-base file as the multipart field 'file'.")
            data = await upload.read(MAX_FILE_BYTES + 1)
            return parse_articles(data, upload.filename)
        finally:
            await form.close()
    if content_type.startswith("application/json") or not content_type:
        raw = await request.body()
        if len(raw) > MAX_FILE_BYTES:
            raise ImportTooLarge(f"The import is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it.")
        try:
            items: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidImport(f"The body is not valid JSON ({exc}).") from None
        if not isinstance(items, list):
            raise InvalidImport("The body must be a JSON list of articles (or a multipart 'file').")
        return parse_article_list(items)
    raise errors.BadRequest("Send application/json (a list of articles) or multipart/form-data with a 'file'.")


@router.post(
    "/kb/import",
    response_model=ImportOut,
    responses=error_responses(413),
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
            "required": True,
        }
    },
)
async def import_articles(request: Request, actor: Admin, svc: ServicesDep) -> ImportOut:
    """Create or update (by `id`) every article of the file, or none: a bad file changes nothing."""
    articles = await _import_body(request)
    result = await svc.kb.import_articles(actor.app_id, articles)
    return ImportOut(created=result.created, updated=result.updated)


@router.post("/bot/ask", response_model=AskOut)
async def ask(body: AskIn, actor: Admin, svc: ServicesDep) -> AskOut:
    """The bot's answer to a question at the app's threshold, outside any conversation."""
    reply = await svc.kb.ask(actor.app_id, body.question)
    return AskOut(answer=reply.answer, article_id=reply.article_id, confidence=reply.confidence, handoff=reply.handoff)


@router.post("/kb/articles/{article_id}/similar", response_model=ArticleOut, responses=error_responses(404, 409))
async def add_similar(article_id: str, body: SimilarIn, actor: Curator, svc: ServicesDep) -> ArticleOut:
    """Add a visitor's wording to an article's similar questions; every node's bot uses it within seconds."""
    return ArticleOut(**article_record(await svc.kb.add_similar(actor, article_id, body.question)))


@router.get("/kb/gaps", response_model=GapsOut)
async def list_gaps(
    actor: Curator,
    svc: ServicesDep,
    start: Annotated[str | None, Query(alias="from", description="ISO-8601, inclusive", max_length=64)] = None,
    to: Annotated[str | None, Query(description="ISO-8601, exclusive", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = 50,
) -> GapsOut:
    """The visitor questions the bot could not serve, asked in [from, to), grouped by meaning (protocol §11)."""
    start_at, end_at = parse_window(start, to)
    groups = await svc.gaps.list_gaps(actor, start_at, end_at, limit)
    return GapsOut(
        items=[
            GapOut(
                question=g.question,
                count=len(g.session_ids),
                session_ids=g.session_ids,
                article_id=g.article_id,
                confidence=g.confidence,
                wordings=[WordingOut(question=w.question, count=w.count) for w in g.wordings],
            )
            for g in groups
        ]
    )
