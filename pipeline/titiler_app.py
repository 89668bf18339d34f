"""TiTiler restricted to the raster store: `uvicorn --factory pipeline.titiler_app:create_app`.

TiTiler opens whatever `url=` names (a local path, http://, s3://, a /vsi path) and has
no allow-list of its own. This app mounts TiTiler's COG endpoints (`TilerFactory`, at
`/cog`) with its own `url=` dependency instead of TiTiler's: the value must name a
GeoTIFF inside RASTER_DIR (its name in the store, or its path there); anything else is
refused with 403 before GDAL sees it. Nothing else of titiler.application is mounted
(no STAC, mosaics, or other readers that take URLs).

The module imports only TiTiler, FastAPI and the standard library (not the rest of the
project), so that the compose file can mount this one file into TiTiler's own image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from titiler.core.factory import ColorMapFactory, TilerFactory, TMSFactory

SUFFIXES = (".tif", ".tiff")
_DEFAULT_STORE = Path(__file__).resolve().parent.parent / "data" / "rasters"


def raster_store() -> Path:
    """The raster store's folder (RASTER_DIR, read when the app is made)."""
    return Path(os.environ.get("RASTER_DIR") or _DEFAULT_STORE).resolve()


def resolve(url: str, store: Path) -> Path:
    """The file `url` names inside `store`; PermissionError for anything else."""
    text = url.strip()
    if not text or "://" in text or text.startswith(("/vsi", "vsi")) or "\0" in text:
        raise PermissionError("only rasters in the raster store may be opened")
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = store / candidate
    # resolve() follows symbolic links and `..`: the real file must lie in the store.
    path = candidate.resolve()
    if not path.is_relative_to(store) or path == store:
        raise PermissionError("only rasters in the raster store may be opened")
    if path.suffix.lower() not in SUFFIXES or path.name.startswith("."):
        raise PermissionError("only the store's GeoTIFFs may be opened")
    return path


def create_app(store: Path | None = None) -> FastAPI:
    """TiTiler's COG endpoints over the files of `store` (RASTER_DIR by default) only."""
    folder = (store or raster_store()).resolve()
    # GDAL would write .aux.xml files of statistics beside the COGs: the store is read-only.
    os.environ.setdefault("GDAL_PAM_ENABLED", "NO")

    def store_path(
        url: Annotated[str, Query(description="A GeoTIFF of the raster store (its name)")],
    ) -> str:
        try:
            path = resolve(url, folder)
        except PermissionError as exc:
            raise HTTPException(status_code=403, detail=f"{exc}: {url!r} refused") from None
        if not path.is_file():
            raise HTTPException(status_code=404, detail=f"no raster {path.name!r} in the store")
        return str(path)

    app = FastAPI(title="Maps platform raster tiles (TiTiler)", docs_url="/docs")
    cog = TilerFactory(router_prefix="/cog", path_dependency=store_path)
    app.include_router(cog.router, prefix="/cog", tags=["Cloud Optimized GeoTIFF"])
    app.include_router(TMSFactory().router, tags=["Tiling Schemes"])
    app.include_router(ColorMapFactory().router, tags=["ColorMaps"])
    add_exception_handlers(app, DEFAULT_STATUS_CODES)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness, and whether the raster store is there."""
        return {"status": "healthy" if folder.is_dir() else "unhealthy", "store": str(folder)}

    return app
