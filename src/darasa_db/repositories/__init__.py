"""Repository protocols (the contract) and their SQL implementations."""

from darasa_db.repositories.protocols import (
    ConversationRepository,
    DocumentRepository,
    InterviewRepository,
    JobInfoRepository,
    QuestionRepository,
    UserRepository,
)

__all__ = [
    "ConversationRepository",
    "DocumentRepository",
    "InterviewRepository",
    "JobInfoRepository",
    "QuestionRepository",
    "UserRepository",
]
