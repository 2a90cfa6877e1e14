"""The in-process tag cache and its tag helpers."""

from darasa_db.cache.tag_cache import CacheStats, TagCache
from darasa_db.cache.tags import ENTITIES, global_tag, id_tag, job_info_tag, user_tag

__all__ = ["ENTITIES", "CacheStats", "TagCache", "global_tag", "id_tag", "job_info_tag", "user_tag"]
