"""The application's four kinds of cache tag.

Every cached read is stored under its entity's global tag, the owner's user tag and either the
row's id tag or its parent job info's tag; a write invalidates the tags of the rows it touched.
"""

from __future__ import annotations

__all__ = ["ENTITIES", "global_tag", "id_tag", "job_info_tag", "user_tag"]

ENTITIES = ("users", "job_infos", "questions", "interviews", "documents", "conversations")
"""The entity names used in tags, one per repository."""


def global_tag(entity: str) -> str:
    """Every cached read of `entity`, e.g. `job_infos`."""
    return entity


def user_tag(entity: str, user_id: str) -> str:
    """A user's cached reads of `entity`, e.g. `user:user_123:job_infos`."""
    return f"user:{user_id}:{entity}"


def id_tag(entity: str, id: object) -> str:
    """Cached reads of one row, e.g. `id:<uuid>:job_infos`."""
    return f"id:{id}:{entity}"


def job_info_tag(entity: str, job_info_id: object) -> str:
    """Cached reads of a job info's children, e.g. `job_info:<uuid>:questions`."""
    return f"job_info:{job_info_id}:{entity}"
