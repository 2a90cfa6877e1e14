"""SQLAlchemy 2.0 declarative models of darasa-db's six tables (schema `darasa` by default)."""

from darasa_db.models.base import DEFAULT_SCHEMA, Base, metadata
from darasa_db.models.conversation import ConversationRow
from darasa_db.models.document import EMBEDDING_DIMENSIONS, DocumentRow
from darasa_db.models.interview import InterviewRow
from darasa_db.models.job_info import ExperienceLevel, JobInfoRow
from darasa_db.models.question import QuestionDifficulty, QuestionRow
from darasa_db.models.user import UserRow

__all__ = [
    "DEFAULT_SCHEMA",
    "EMBEDDING_DIMENSIONS",
    "Base",
    "ConversationRow",
    "DocumentRow",
    "ExperienceLevel",
    "InterviewRow",
    "JobInfoRow",
    "QuestionDifficulty",
    "QuestionRow",
    "UserRow",
    "metadata",
]
