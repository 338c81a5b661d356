"""What one app holds between requests, reached by routes through ``current_app``."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from drs.api.metrics import ApiMetrics, ProductionCollector
from drs.api.model_cache import FileKeyedCache, ModelCache
from drs.api.openapi import openapi_document
from drs.config import Config
from drs.files import HISTORY_FILE
from drs.production import production_store

EXTENSION = "drs"


@dataclass
class ApiState:
    """The config, the model held, the file-keyed caches, the metrics and the OpenAPI document of one app.

    `open_routes`: the paths answered without a token; `route_paths`: every route's path
    (filled in by create_app once the blueprints are registered)."""

    config: Config
    models: ModelCache
    cache: FileKeyedCache
    metrics: ApiMetrics
    openapi: dict
    open_routes: frozenset[str]
    route_paths: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_config(cls, config: Config) -> ApiState:
        store = production_store(config)
        models, cache = ModelCache(store, config.schema), FileKeyedCache()
        metrics = ApiMetrics(ProductionCollector(models.current, config.log_folder / HISTORY_FILE, cache))
        open_routes = frozenset({"/health"} | ({"/metrics"} if config.metrics_public else set()))
        return cls(config, models, cache, metrics, openapi_document(config), open_routes)


def api_state() -> ApiState:
    """The state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
