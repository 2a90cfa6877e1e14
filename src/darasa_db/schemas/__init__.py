"""Pydantic v2 DTOs: frozen read models and validated create/update inputs.

Inputs are validated before any SQL runs: a bad value raises `pydantic.ValidationError`
naming the field, and nothing is written.
"""

from darasa_db.schemas._common import EmbeddingInput
from darasa_db.schemas.conversation import Conversation, ConversationCreate, Message, MessageRole
from darasa_db.schemas.document import Document, DocumentCreate, DocumentMatch, HybridMatch
from darasa_db.schemas.interview import Interview, InterviewCreate, InterviewUpdate
from darasa_db.schemas.job_info import ExperienceLevel, JobInfo, JobInfoCreate, JobInfoUpdate
from darasa_db.schemas.question import Question, QuestionCreate, QuestionDifficulty
from darasa_db.schemas.user import ErasureReport, User, UserCreate, UserUpdate, UserUpsert

__all__ = [
    "Conversation",
    "ConversationCreate",
    "Document",
    "DocumentCreate",
    "DocumentMatch",
    "EmbeddingInput",
    "ErasureReport",
    "ExperienceLevel",
    "HybridMatch",
    "Interview",
    "InterviewCreate",
    "InterviewUpdate",
    "JobInfo",
    "JobInfoCreate",
    "JobInfoUpdate",
    "Message",
    "MessageRole",
    "Question",
    "QuestionCreate",
    "QuestionDifficulty",
    "User",
    "UserCreate",
    "UserUpdate",
    "UserUpsert",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
